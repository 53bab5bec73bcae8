import { isValidTimeZone } from './zonedTime.js';

/**
 * TZID values as calendar programs write them, mapped to IANA zones. The VTIMEZONE blocks that
 * come with them are ignored: their rules are a snapshot from when the file was written, while the
 * system's tzdata is kept current. Outlook and Exchange write Windows zone names; the common ones
 * are mapped here (CLDR windowsZones.xml, territory "001"), anything else is an error that names
 * the TZID, because a guessed zone would record the wrong hour.
 */
const WINDOWS_ZONES: Readonly<Record<string, string>> = {
  'UTC': 'UTC',
  'GMT Standard Time': 'Europe/London',
  'Greenwich Standard Time': 'Atlantic/Reykjavik',
  'W. Europe Standard Time': 'Europe/Berlin',
  'Central Europe Standard Time': 'Europe/Budapest',
  'Central European Standard Time': 'Europe/Warsaw',
  'Romance Standard Time': 'Europe/Paris',
  'E. Europe Standard Time': 'Europe/Chisinau',
  'FLE Standard Time': 'Europe/Kyiv',
  'GTB Standard Time': 'Europe/Bucharest',
  'Turkey Standard Time': 'Europe/Istanbul',
  'Russian Standard Time': 'Europe/Moscow',
  'Israel Standard Time': 'Asia/Jerusalem',
  'Egypt Standard Time': 'Africa/Cairo',
  'South Africa Standard Time': 'Africa/Johannesburg',
  'E. Africa Standard Time': 'Africa/Nairobi',
  'W. Central Africa Standard Time': 'Africa/Lagos',
  'Morocco Standard Time': 'Africa/Casablanca',
  'Arabian Standard Time': 'Asia/Dubai',
  'Arab Standard Time': 'Asia/Riyadh',
  'Iran Standard Time': 'Asia/Tehran',
  'Pakistan Standard Time': 'Asia/Karachi',
  'India Standard Time': 'Asia/Kolkata',
  'Nepal Standard Time': 'Asia/Kathmandu',
  'Bangladesh Standard Time': 'Asia/Dhaka',
  'SE Asia Standard Time': 'Asia/Bangkok',
  'Singapore Standard Time': 'Asia/Singapore',
  'China Standard Time': 'Asia/Shanghai',
  'Taipei Standard Time': 'Asia/Taipei',
  'Tokyo Standard Time': 'Asia/Tokyo',
  'Korea Standard Time': 'Asia/Seoul',
  'AUS Eastern Standard Time': 'Australia/Sydney',
  'New Zealand Standard Time': 'Pacific/Auckland',
  'Eastern Standard Time': 'America/New_York',
  'Central Standard Time': 'America/Chicago',
  'Mountain Standard Time': 'America/Denver',
  'US Mountain Standard Time': 'America/Phoenix',
  'Pacific Standard Time': 'America/Los_Angeles',
  'Atlantic Standard Time': 'America/Halifax',
  'SA Pacific Standard Time': 'America/Bogota',
  'E. South America Standard Time': 'America/Sao_Paulo',
  'Argentina Standard Time': 'America/Argentina/Buenos_Aires',
};

/**
 * The IANA zone a TZID names, or undefined. Accepts IANA names, the Windows names above, and the
 * prefixed names older Mozilla/Lightning exports write (`/mozilla.org/20050126_1/Europe/Berlin`).
 */
export function resolveTzid(tzid: string): string | undefined {
  const name = tzid.trim();
  const windows = WINDOWS_ZONES[name];
  if (windows !== undefined) return windows;
  if (!name.startsWith('/') && isValidTimeZone(name)) return name;
  const parts = name.split('/').filter((p) => p !== '');
  for (let take = Math.min(3, parts.length); take >= 1; take--) {
    const candidate = parts.slice(-take).join('/');
    if (/^[A-Za-z]/.test(candidate) && candidate.includes('/') && isValidTimeZone(candidate)) return candidate;
  }
  return undefined;
}
