#!/usr/bin/python3
"""A test RTSP camera: GStreamer's RTSP server (python3-gi) on 127.0.0.1.

One shared live media (every client joins the same encoder, as with a real camera): a moving
SMPTE test pattern encoded to H.264 with a fixed 2 s GOP, and a 440 Hz tone as AAC or G.711 A-law.
Optional digest authentication, like real cameras.

Run with /usr/bin/python3 (where Debian's python3-gi lives). Controlled over stdin, one command a
line; each command is answered on stdout with `ok <command>` once it took effect, or
`error <command> <message>`. The first line is `ready <port>`.

  reboot   close every client connection and stop listening (the port refuses connections)
  up       listen again on the same port
  freeze   stop sending media but keep sessions open (valves drop on both branches)
  thaw     send media again
  mute     audio becomes digital silence
  unmute   the tone again
  still    the picture stops moving (media still flows: a frozen image, not a frozen camera)
  move     the picture moves again
  black    the picture becomes black
  quit     stop (end of stdin does the same)

The password comes from the environment (RTSP_CAMERA_PASSWORD), never from the command line.
"""

import argparse
import os
import sys
import threading

import gi

gi.require_version('Gst', '1.0')
gi.require_version('GstRtsp', '1.0')
gi.require_version('GstRtspServer', '1.0')
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402

# Pixels the pattern scrolls per frame while it moves.
MOVING_SPEED = 2


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument('--width', type=int, default=320)
    p.add_argument('--height', type=int, default=240)
    p.add_argument('--fps', type=int, default=25)
    p.add_argument('--audio', choices=['aac', 'alaw', 'none'], default='aac')
    p.add_argument('--path', default='/stream1')
    p.add_argument('--user', default='')
    return p.parse_args()


def launch_string(args):
    gop = 2 * args.fps
    video = (
        f'videotestsrc name=vsrc is-live=true pattern=smpte horizontal-speed={MOVING_SPEED} '
        f'! video/x-raw,width={args.width},height={args.height},framerate={args.fps}/1 '
        # The valve sits before the encoder, so after a thaw the stream resumes cleanly.
        f'! valve name=v0 drop=false '
        f'! x264enc tune=zerolatency speed-preset=ultrafast key-int-max={gop} bitrate=400 '
        f'! rtph264pay name=pay0 pt=96 config-interval=1'
    )
    if args.audio == 'none':
        return video
    if args.audio == 'aac':
        audio_enc = 'audio/x-raw,rate=48000,channels=1 ! volume name=vol ! valve name=v1 drop=false ! audioconvert ! voaacenc bitrate=64000 ! rtpmp4gpay name=pay1 pt=97'
    else:
        audio_enc = 'audio/x-raw,rate=8000,channels=1 ! volume name=vol ! valve name=v1 drop=false ! audioconvert ! alawenc ! rtppcmapay name=pay1 pt=8'
    audio = f'audiotestsrc is-live=true wave=sine freq=440 volume=0.3 ! audioconvert ! audioresample ! {audio_enc}'
    return f'{video} {audio}'


class Camera:
    def __init__(self, args):
        self.args = args
        self.state = {'frozen': False, 'muted': False, 'still': False, 'black': False}
        self.media = None
        self.server = GstRtspServer.RTSPServer()
        self.server.set_address('127.0.0.1')
        self.server.set_service('0')  # the kernel picks a free port; reused on `up`
        factory = GstRtspServer.RTSPMediaFactory()
        factory.set_launch(launch_string(args))
        factory.set_shared(True)
        factory.connect('media-configure', self.on_media_configure)
        password = os.environ.get('RTSP_CAMERA_PASSWORD', '')
        if args.user:
            token = GstRtspServer.RTSPToken()
            token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, 'user')
            auth = GstRtspServer.RTSPAuth()
            auth.add_digest(args.user, password, token)
            auth.set_supported_methods(GstRtsp.RTSPAuthMethod.DIGEST)
            self.server.set_auth(auth)
            # Without these permissions even correct credentials get 401.
            perms = GstRtspServer.RTSPPermissions()
            perms.add_permission_for_role('user', GstRtspServer.RTSP_PERM_MEDIA_FACTORY_ACCESS, True)
            perms.add_permission_for_role('user', GstRtspServer.RTSP_PERM_MEDIA_FACTORY_CONSTRUCT, True)
            factory.set_permissions(perms)
        self.server.get_mount_points().add_factory(args.path, factory)
        self.source_id = None

    def attach(self):
        self.source_id = self.server.attach(None)
        port = self.server.get_bound_port()
        # Listen on the same port after a reboot, as a camera does.
        self.server.set_service(str(port))
        return port

    def on_media_configure(self, _factory, media):
        self.media = media
        media.connect('unprepared', self.on_media_unprepared)
        self.apply()

    def on_media_unprepared(self, media):
        if self.media is media:
            self.media = None

    def element(self, name):
        if self.media is None:
            return None
        return self.media.get_element().get_by_name(name)

    def apply(self):
        """Applies the state to the running media (a new media gets it in media-configure)."""
        for name in ('v0', 'v1'):
            valve = self.element(name)
            if valve is not None:
                valve.set_property('drop', self.state['frozen'])
        vol = self.element('vol')
        if vol is not None:
            vol.set_property('volume', 0.0 if self.state['muted'] else 1.0)
        vsrc = self.element('vsrc')
        if vsrc is not None:
            vsrc.set_property('horizontal-speed', 0 if self.state['still'] or self.state['black'] else MOVING_SPEED)
            vsrc.set_property('pattern', 'black' if self.state['black'] else 'smpte')

    def command(self, line):
        cmd = line.strip()
        try:
            if cmd == 'reboot':
                self.server.client_filter(lambda _s, _c, _d: GstRtspServer.RTSPFilterResult.REMOVE, None)
                if self.source_id is not None:
                    GLib.source_remove(self.source_id)
                    self.source_id = None
            elif cmd == 'up':
                if self.source_id is None:
                    self.attach()
            elif cmd in ('freeze', 'thaw'):
                self.state['frozen'] = cmd == 'freeze'
                self.apply()
            elif cmd in ('mute', 'unmute'):
                self.state['muted'] = cmd == 'mute'
                self.apply()
            elif cmd in ('still', 'move', 'black'):
                self.state['still'] = cmd == 'still'
                self.state['black'] = cmd == 'black'
                self.apply()
            elif cmd == 'quit':
                reply(f'ok {cmd}')
                loop.quit()
                return False
            elif cmd == '':
                return False
            else:
                reply(f'error {cmd} unknown command')
                return False
            reply(f'ok {cmd}')
        except Exception as err:  # reported to the test, which fails with the message
            reply(f'error {cmd} {err}')
        return False


def reply(text):
    sys.stdout.write(text + '\n')
    sys.stdout.flush()


def read_stdin(camera):
    for line in sys.stdin:
        GLib.idle_add(camera.command, line)
    # End of stdin: the test process is gone; do not outlive it.
    GLib.idle_add(loop.quit)


if __name__ == '__main__':
    Gst.init(None)
    args = parse_args()
    camera = Camera(args)
    loop = GLib.MainLoop()
    port = camera.attach()
    reply(f'ready {port}')
    threading.Thread(target=read_stdin, args=(camera,), daemon=True).start()
    loop.run()
