export type {
  AudioConfig,
  AudioEncoderChange,
  AudioEncoderInfo,
  AudioSourceConfigInfo,
  CameraControl,
  CameraStatus,
  DeviceInfo,
  MediaProfile,
  Preset,
  StreamInfo,
  VideoEncoderInfo,
} from './types.js';
export { DEFAULT_CAMERA_TIMEOUT_MS, OnvifCamera, describeProfile, selectProfile, type OnvifCameraOptions } from './onvifCamera.js';
export { discoverCameras, probeAddress, WS_DISCOVERY_PORT, type DiscoveredCamera } from './discovery.js';
export { deviceServiceUrl } from './address.js';
