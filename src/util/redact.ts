/**
 * Credential redaction. Every argv and log line that may hold a camera or storage URL passes
 * through here, so a password typed into a camera URL never reaches the journal or a terminal.
 */

// scheme://user:password@host  -> scheme://user:***@host
const URL_USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/)([^/\s:@]*):([^/\s@]*)@/gi;
// Query parameters that carry secrets in camera snapshot URLs and presigned S3 URLs.
const SECRET_QUERY = /([?&](?:password|passwd|pwd|pass|token|access_token|auth|key|secret|signature|x-amz-signature|x-amz-credential|x-amz-security-token)=)[^&\s#"']*/gi;

export const REDACTED = '***';

export function redactUrl(text: string): string {
  return text.replace(URL_USERINFO, `$1$2:${REDACTED}@`).replace(SECRET_QUERY, `$1${REDACTED}`);
}

/** Redacts each argument and additionally any value in `secrets` wherever it appears. */
export function redactArgv(argv: readonly string[], secrets: readonly string[] = []): string[] {
  return argv.map((arg) => redactSecrets(redactUrl(arg), secrets));
}

/** Replaces every occurrence of each known secret value (for secrets not shaped like a URL). */
export function redactSecrets(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) {
    // Very short values would mangle unrelated text; such passwords are caught by URL redaction.
    if (secret.length >= 4) out = out.split(secret).join(REDACTED);
  }
  return out;
}
