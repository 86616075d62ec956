// Group name -> gid for the unix socket's group (Node has no getgrnam): reads /etc/group.
// Called once at start; a numeric group is taken as a gid. Returns null for an unknown group.

import { readFile } from 'node:fs/promises';

export async function resolveGroup(group: string, groupFile = '/etc/group'): Promise<number | null> {
  if (/^[0-9]+$/.test(group)) return Number(group);
  let text: string;
  try {
    text = await readFile(groupFile, 'utf8');
  } catch {
    return null;
  }
  for (const line of text.split('\n')) {
    const [name, , gid] = line.split(':');
    if (name === group && gid !== undefined && /^[0-9]+$/.test(gid)) return Number(gid);
  }
  return null;
}
