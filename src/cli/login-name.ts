import os from 'node:os';

/** Who runs this, as m2sh records it (and as the real m2sh requires): LOGNAME, USER, then the passwd entry. */
export function loginName(): string | undefined {
  if (process.env.LOGNAME) return process.env.LOGNAME;
  if (process.env.USER) return process.env.USER;
  try {
    return os.userInfo().username;
  } catch {
    return undefined;
  }
}
