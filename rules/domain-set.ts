// Local and relay domains as sendmail matches them. Pure, immutable once built.
//   local domains (class w): exact names only;
//   relay domains (class R): the name and every subdomain (`example.com` covers
//   `mx.example.com`), or exact names only with relay_hosts_only, as sendmail's FEATURE;
//   address literals (`[192.0.2.1]`) always match exactly.

export class DomainSet {
  private readonly names: ReadonlySet<string>;

  constructor(
    names: Iterable<string>,
    private readonly subdomains: boolean,
  ) {
    this.names = new Set(names);
  }

  get size(): number {
    return this.names.size;
  }

  /** The entry that covers `host` (already normalised: lower case, no trailing dot), or null. */
  match(host: string): string | null {
    if (this.names.has(host)) return host;
    if (!this.subdomains || host.startsWith('[')) return null;
    for (let dot = host.indexOf('.'); dot >= 0; dot = host.indexOf('.', dot + 1)) {
      const parent = host.slice(dot + 1);
      if (this.names.has(parent)) return parent;
    }
    return null;
  }
}
