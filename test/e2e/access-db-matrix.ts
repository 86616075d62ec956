// The case matrix of the access_db differential test (access-db-differential.test.ts): the
// client names the MTAs can see (private /etc/hosts = verified PTR names; the testbed DNS server
// = NXDOMAIN for every other address, plus PTR names without a matching A record), the domain
// sets shared by sendmail's configuration and the daemon's, and the SMTP transactions, each
// chosen to hit entries of test/golden/access-db/access alone and in combination. Pure data: no
// I/O. Case ids are stable (the golden file and the known-differences list refer to them), so
// add new cases rather than renumber; duplicates throw at load time.

import { createHash } from 'node:crypto';

/** A client address with a verified name (PTR and A agree, from the MTAs' /etc/hosts). */
export interface NamedClient {
  address: string;
  name: string;
}

export const NAMED_CLIENTS: readonly NamedClient[] = [
  { address: '127.0.0.4', name: 'neutral.client.example' },
  { address: '127.0.0.21', name: 'mx.partner.example' },
  { address: '127.0.9.21', name: 'mx.partner.example' },
  { address: '127.0.0.22', name: 'mail.spammers.net' },
  { address: '127.0.0.23', name: 'bogus.example.gr.jp' },
  { address: '127.0.0.24', name: 'host.example.gr.jp' },
  { address: '127.0.0.25', name: 'a.lan.example' },
  { address: '127.0.0.26', name: 'bad.lan.example' },
  { address: '127.0.0.27', name: 'good.blocked.example' },
  { address: '127.0.0.28', name: 'plain.named.example' },
  { address: '127.0.0.31', name: 'gw.relay.example.test' },
  { address: '127.0.0.33', name: 'spammers.net.example' },
  { address: '127.0.0.34', name: 'host.ube.com' },
  { address: '127.0.0.36', name: 'upper.case.example' },
  { address: '127.0.0.48', name: 'mx.tempfail.names.example' },
  { address: '127.0.0.49', name: 'local.example' },
  { address: '127.0.0.50', name: 'www.names.example' },
  { address: '127.0.0.51', name: 'ok.names.example' },
  { address: '127.0.0.52', name: 'host.sender-untagged.example' },
  { address: '127.0.0.53', name: 'box.localhost' },
  { address: '127.0.0.56', name: 'mx.dotted.example' },
  { address: '127.0.0.57', name: 'host.tagwin.example' },
];

/** PTR names served by the DNS server without an A record: sendmail calls them forged. */
export const FORGED_PTRS: readonly NamedClient[] = [
  { address: '127.0.0.35', name: 'forged.example' },
  { address: '127.0.0.54', name: 'mx.partner.example' },
];

/** sendmail's host name in the testbed (class w, with its short form). */
export const SENDMAIL_NAME = 'sendmail.example.test';

/** local-host-names: class w besides sendmail's own names, `localhost` and `[127.0.0.1]`. */
export const LOCAL_HOST_NAMES: readonly string[] = ['example.test', 'local.example'];

/** sendmail's class w as `sendmail -bt` prints it ($=w) in the testbed namespace. */
export const CLASS_W: readonly string[] = [
  'sendmail',
  'localhost',
  '[127.0.0.1]',
  SENDMAIL_NAME,
  ...LOCAL_HOST_NAMES,
];

/** RELAY_DOMAIN (class R; a domain and its subdomains). */
export const RELAY_DOMAINS: readonly string[] = ['relay.example.test'];

/** One SMTP session: connect from `client`, greet, one transaction. */
export interface AccessCase {
  id: string;
  /** What the case is about (printed in the table, kept in the golden file). */
  title: string;
  client: string;
  /** HELO/EHLO argument; default `<id-derived>.client.example` (unique, ties log lines to cases). */
  helo?: string;
  /** HELO instead of EHLO. */
  heloVerb?: 'HELO';
  /** Inside MAIL FROM:<...> ('' = the null sender). */
  from: string;
  /** Each inside RCPT TO:<...>. Always all sent, whatever MAIL answered. */
  rcpts: readonly string[];
  /** Send DATA when at least one RCPT was accepted (default true). */
  data?: boolean;
}

const cases: AccessCase[] = [];

function add(c: AccessCase): void {
  cases.push(c);
}

// ---------------------------------------------------------------------------------------------
// 1. Every client x three standard transactions:
//    relay  - neutral sender, a local and a foreign recipient (client check + relay permission)
//    oksend - sender From:oksender.example OK (delay_checks: client checks skipped), same rcpts
//    friend - neutral sender, Spam:abuse@ FRIEND recipient, then a plain local one
const NEUTRAL_SENDER = 'sender@neutral.example';
const LOCAL = 'user@example.test';
const FOREIGN = 'someone@foreign.example';

const CLIENTS: ReadonlyArray<{ address: string; what: string }> = [
  { address: '127.0.0.2', what: 'no name, no entry' },
  { address: '127.0.0.3', what: 'no name, no entry (second)' },
  { address: '127.0.0.4', what: 'verified name, no entry' },
  { address: '127.0.0.10', what: 'Connect:ip REJECT' },
  { address: '127.0.0.11', what: 'Connect:ip ERROR:5.7.1:"550 ..."' },
  { address: '127.0.0.12', what: 'Connect:ip ERROR:4.7.1:"451 ..." (tempfail)' },
  { address: '127.0.0.13', what: 'Connect:ip DISCARD' },
  { address: '127.0.0.14', what: 'Connect:ip QUARANTINE:reason' },
  { address: '127.0.0.15', what: 'Connect:ip RELAY (may relay)' },
  { address: '127.0.0.16', what: 'Connect:ip OK (not relay)' },
  { address: '127.0.0.17', what: 'untagged ip REJECT' },
  { address: '127.0.0.18', what: 'Connect:ip REJCT (typo = error text)' },
  { address: '127.0.0.19', what: 'Connect:ip bare "550 text"' },
  { address: '127.0.0.20', what: 'Connect:ip unquoted ERROR text with punctuation' },
  { address: '127.0.0.21', what: 'name mx.partner.example RELAY' },
  { address: '127.0.0.22', what: 'name mail.spammers.net: untagged parent spammers.net REJECT' },
  { address: '127.0.0.23', what: 'name bogus.example.gr.jp ERROR:550 (over example.gr.jp RELAY)' },
  { address: '127.0.0.24', what: 'name host.example.gr.jp: untagged parent RELAY' },
  { address: '127.0.0.25', what: 'name a.lan.example: Connect:lan.example OK' },
  { address: '127.0.0.26', what: 'name bad.lan.example REJECT (over lan.example OK)' },
  { address: '127.0.0.27', what: 'name RELAY wins over ip REJECT' },
  { address: '127.0.0.28', what: 'name without entry, ip ERROR' },
  { address: '127.0.0.29', what: 'no name, Connect:[ip] REJECT' },
  { address: '127.0.0.30', what: 'no name, Connect:[ip] RELAY' },
  { address: '127.0.0.31', what: 'name in RELAY_DOMAIN (class R)' },
  { address: '127.0.0.32', what: 'no name, untagged [ip] ERROR' },
  { address: '127.0.0.33', what: 'name spammers.net.example (not a subdomain of spammers.net)' },
  { address: '127.0.0.34', what: 'name host.ube.com (only spammer@ube.com listed)' },
  { address: '127.0.0.35', what: 'forged PTR forged.example (Connect:forged.example RELAY)' },
  { address: '127.0.0.36', what: 'name case-insensitive RELAY over ip REJECT' },
  { address: '127.0.0.37', what: 'Connect:ip REJECT with trailing blanks' },
  { address: '127.0.0.38', what: 'Connect:ip 421 text' },
  { address: '127.0.0.39', what: 'Connect:ip ERROR:"554 ..." without D.S.N' },
  { address: '127.0.0.40', what: 'Connect:ip SKIP without the skip option' },
  { address: '127.0.0.41', what: 'Connect:ip lower-case error: keyword' },
  { address: '127.0.0.42', what: 'Connect:ip ERROR:4.2.2:450 unquoted' },
  { address: '127.0.0.43', what: 'Connect:ip ERROR:452 (no D.S.N, 4xx)' },
  { address: '127.0.0.44', what: 'Connect:ip ERROR:5.7.1:450 (contradictory codes)' },
  { address: '127.0.0.45', what: 'Connect:ip lower-case reject' },
  { address: '127.0.0.46', what: 'CONNECT:ip Discard (upper-case tag, mixed-case keyword)' },
  { address: '127.0.0.47', what: 'Connect:ip QUARANTINE (second reason)' },
  { address: '127.0.0.48', what: 'name under tempfail.names.example 451' },
  { address: '127.0.0.49', what: 'name local.example (in class w)' },
  { address: '127.0.0.50', what: 'name under names.example 550' },
  { address: '127.0.0.51', what: 'name ok.names.example OK (over names.example 550)' },
  { address: '127.0.0.52', what: 'name under untagged sender-untagged.example ERROR' },
  { address: '127.0.0.53', what: 'name box.localhost (untagged localhost RELAY)' },
  { address: '127.0.0.54', what: 'forged PTR mx.partner.example (a RELAY name)' },
  { address: '127.0.0.55', what: 'Connect:ip OK beats untagged ip REJECT' },
  { address: '127.0.0.56', what: 'name mx.dotted.example: Connect:.dotted.example without lookupdotdomain' },
  {
    address: '127.0.0.57',
    what: 'name host.tagwin.example: untagged REJECT (From:tagwin.example OK is not Connect:)',
  },
  { address: '127.0.9.10', what: 'worked example: ip OK inside a REJECT /24' },
  { address: '127.0.9.21', what: 'worked example: name RELAY inside a REJECT /24' },
  { address: '127.0.9.77', what: 'worked example: Connect:/24 REJECT' },
  { address: '127.0.8.5', what: 'untagged /24 ERROR 451' },
  { address: '127.0.8.8', what: 'Connect:ip RELAY inside a 451 /24' },
  { address: '127.5.0.9', what: 'Connect:/16 RELAY' },
  { address: '127.5.5.5', what: 'Connect:/24 REJECT inside a /16 RELAY' },
  { address: '127.5.5.6', what: 'Connect:ip OK inside /24 REJECT inside /16 RELAY' },
  { address: '127.5.6.1', what: 'Connect:[/24] bracketed network ERROR (over /16 RELAY)' },
  { address: '127.6.0.3', what: 'Connect:/16 QUARANTINE' },
  { address: '127.7.0.5', what: 'Connect:/16 DISCARD' },
];

for (const { address, what } of CLIENTS) {
  add({
    id: `client:${address}:relay`,
    title: `${what}; neutral sender, local + foreign rcpt`,
    client: address,
    from: NEUTRAL_SENDER,
    rcpts: [LOCAL, FOREIGN],
  });
  add({
    id: `client:${address}:oksender`,
    title: `${what}; From:oksender.example OK, local + foreign rcpt`,
    client: address,
    from: 'someone@oksender.example',
    rcpts: [LOCAL, FOREIGN],
  });
  add({
    id: `client:${address}:friend`,
    title: `${what}; Spam:abuse@ FRIEND rcpt, then a plain local one`,
    client: address,
    from: NEUTRAL_SENDER,
    rcpts: ['abuse@example.test', 'postmaster@example.test'],
  });
}

// ---------------------------------------------------------------------------------------------
// 2. Senders, from an unnamed neutral client (127.0.0.2) to a local recipient.
const SENDERS: ReadonlyArray<{ from: string; what: string }> = [
  { from: 'spammer@ube.com', what: 'seed: untagged full address ERROR:5.7.1:551 (unquoted)' },
  { from: 'spam@uce.uce.com', what: 'seed: untagged full address DISCARD' },
  { from: 'other@uce.uce.com', what: 'same domain, other user: no entry' },
  { from: 'x@spammers.net', what: 'seed: untagged domain REJECT' },
  { from: 'x@mail.spammers.net', what: 'seed: untagged parent domain REJECT' },
  { from: 'x@example.gr.jp', what: 'seed: untagged domain RELAY (sender RELAY)' },
  { from: 'x@bogus.example.gr.jp', what: 'seed: untagged domain ERROR:550 Bogus host' },
  { from: 'junk@other.example.gr.jp', what: 'seed: untagged full address ERROR:550 unquoted' },
  { from: 'bogus_user@anywhere.example', what: 'seed: untagged user@ REJECT, any domain' },
  { from: 'bogus_user@example.test', what: 'seed: untagged user@ REJECT, local domain' },
  { from: 'x@localhost', what: 'seed: localhost RELAY; sender @localhost from a remote client' },
  { from: 'spammer@example.com', what: 'worked: From:full REJECT over From:example.com OK' },
  { from: 'bulk@example.com', what: 'worked: From:bulk@ (user@ before domain)' },
  { from: 'x@example.com', what: 'worked: From:example.com OK' },
  { from: 'x@sub.example.com', what: 'worked: parent domain OK' },
  { from: 'spammer+promo@example.com', what: 'worked: +detail falls back to the full address' },
  { from: 'bulk+x@elsewhere.example', what: 'From:bulk@ with +detail, other domain' },
  { from: 'user+tag@plus.example', what: 'From:user+*@domain' },
  { from: 'user@plus.example', what: 'From:user@domain (no detail)' },
  { from: 'user+@plus.example', what: 'empty +detail' },
  { from: 'joe+x@plus2.example', what: 'From:joe@domain matches joe+x@domain' },
  { from: 'joe@plus2.example', what: 'From:joe@domain' },
  { from: 'list+weekly@any.example', what: 'From:list+*@ (U with detail)' },
  { from: 'list@any.example', what: 'From:list+*@ does not match plain list@' },
  { from: 'news@any.example', what: 'From:news@ DISCARD' },
  { from: 'news+daily@any.example', what: 'From:news@ matches news+daily@' },
  { from: 'hold+x@any.example', what: 'From:hold+*@ QUARANTINE' },
  { from: 'x@spamdomain.example', what: 'From:domain REJECT' },
  { from: 'x@deep.sub.spamdomain.example', what: 'From:parent domain REJECT' },
  { from: 'x@ok.spamdomain.example', what: 'From:subdomain OK over parent REJECT' },
  { from: 'x@tempfail.example', what: 'From:domain ERROR 451' },
  { from: 'x@quarantine.example', what: 'From:domain QUARANTINE' },
  { from: 'x@relaysender.example', what: 'From:domain RELAY' },
  { from: 'x@oksender.example', what: 'From:domain OK' },
  { from: 'x@typo.example', what: 'From:domain REJCT (typo)' },
  { from: 'x@oldstyle.example', what: 'From:domain bare 550 text' },
  { from: 'x@unquoted.example', what: 'From:domain unquoted text with punctuation' },
  { from: 'mixedcase@example.org', what: 'From: key with capitals, sender lower case' },
  { from: 'MIXEDCASE@EXAMPLE.ORG', what: 'From: key with capitals, sender upper case' },
  { from: 'x@trailing.example', what: 'From:domain DISCARD with trailing blanks' },
  { from: 'x@busy.example', what: 'From:domain 421 text' },
  { from: 'x@sender-untagged.example', what: 'untagged domain ERROR applies to senders' },
  { from: '', what: 'null sender (From:<> REJECT must not apply)' },
  { from: 'x@neutral.example', what: 'no entry at all' },
  { from: 'joe', what: 'unqualified sender' },
  { from: 'x@[127.0.0.1]', what: 'sender at an address literal ([127.0.0.1] is in class w)' },
  { from: 'x@EXAMPLE.COM', what: 'upper-case domain, From:example.com OK' },
  { from: 'x@partner.example', what: 'To:partner.example RELAY does not apply to senders' },
  { from: 'x@tagwin.example', what: 'From:domain OK beats untagged domain REJECT' },
  { from: 'x@sub.dotted.example', what: 'From:.dotted.example without lookupdotdomain' },
  { from: 'x@hash.example', what: "From:domain ERROR text with '#' inside" },
];

SENDERS.forEach(({ from, what }, i) => {
  add({
    id: `sender:${i + 1}:${from === '' ? '<>' : from}`,
    title: `sender ${what}`,
    client: '127.0.0.2',
    from,
    rcpts: [LOCAL],
  });
});

// A few senders again from a client that is itself refused (delay_checks order and overrides).
const OVERRIDE_SENDERS: ReadonlyArray<{ from: string; what: string }> = [
  { from: 'x@example.com', what: 'From:domain OK overrides client REJECT' },
  { from: 'x@relaysender.example', what: 'From:domain RELAY overrides client REJECT' },
  { from: 'x@example.gr.jp', what: 'untagged domain RELAY overrides client REJECT' },
  { from: 'x@spamdomain.example', what: 'sender REJECT and client REJECT: sender reported' },
  { from: 'x@tempfail.example', what: 'sender 451 and client REJECT' },
  { from: 'x@quarantine.example', what: 'sender QUARANTINE and client REJECT' },
  { from: 'spam@uce.uce.com', what: 'sender DISCARD and client REJECT' },
  { from: '', what: 'null sender, client REJECT' },
  { from: 'x@ok.spamdomain.example', what: 'sender OK (subdomain) overrides client REJECT' },
  { from: 'x@localhost', what: 'sender @localhost (untagged RELAY), client REJECT' },
];
for (const client of ['127.0.0.10', '127.0.0.13', '127.0.0.12']) {
  OVERRIDE_SENDERS.forEach(({ from, what }, i) => {
    add({
      id: `override:${client}:${i + 1}`,
      title: `client ${client}: ${what}`,
      client,
      from,
      rcpts: [LOCAL, 'abuse@example.test'],
    });
  });
}

// ---------------------------------------------------------------------------------------------
// 3. Recipients (blocklist_recipients, relaying), from an unnamed neutral client and from a
//    relay-permitted one (127.0.0.15, Connect:ip RELAY).
const RECIPIENTS: ReadonlyArray<{ rcpt: string; what: string }> = [
  { rcpt: 'blocked@example.test', what: 'To:full REJECT (local)' },
  { rcpt: 'nobody@example.test', what: 'worked: To:nobody@ local domain' },
  { rcpt: 'nobody@local.example', what: 'To:nobody@, second local domain' },
  { rcpt: 'nobody@sendmail.example.test', what: "To:nobody@, sendmail's own name" },
  { rcpt: 'nobody@localhost', what: 'To:nobody@, localhost' },
  { rcpt: 'nobody@partner.example', what: 'To:nobody@ on a non-local domain (To:partner.example RELAY)' },
  { rcpt: 'nobody@relay.example.test', what: 'To:nobody@ on a RELAY_DOMAIN (not local)' },
  { rcpt: 'bogus_user@example.test', what: 'seed: untagged user@ REJECT, local' },
  { rcpt: 'bogus_user@relay.example.test', what: 'seed: untagged user@ REJECT, relay domain' },
  { rcpt: 'bogus_user@foreign.example', what: 'seed: untagged user@ REJECT, foreign' },
  { rcpt: 'junk@other.example.gr.jp', what: 'seed: untagged full address ERROR, relayable domain' },
  { rcpt: 'x@other.example.gr.jp', what: 'seed: untagged example.gr.jp RELAY (relay to)' },
  { rcpt: 'x@bogus.example.gr.jp', what: 'seed: untagged domain ERROR as recipient' },
  { rcpt: 'x@spammers.net', what: 'seed: untagged domain REJECT as recipient' },
  { rcpt: 'spammer@ube.com', what: 'seed: untagged full address ERROR as recipient' },
  { rcpt: 'spam@uce.uce.com', what: 'seed: untagged DISCARD as (foreign) recipient' },
  { rcpt: 'x@localhost', what: 'localhost (class w; untagged RELAY)' },
  { rcpt: 'x@closed.example', what: 'To:domain ERROR 550 (foreign)' },
  { rcpt: 'x@sub.closed.example', what: 'To:parent domain ERROR' },
  { rcpt: 'x@okdest.example', what: 'To:domain OK (no relay permission)' },
  { rcpt: 'discard@example.test', what: 'To:full DISCARD' },
  { rcpt: 'hold@example.test', what: 'To:full QUARANTINE' },
  { rcpt: 'busy@example.test', what: 'To:full 450' },
  { rcpt: 'typo@example.test', what: 'To:full REJCT (typo)' },
  { rcpt: 'old@example.test', what: 'To:full bare 553 text' },
  { rcpt: 'sales@local.example', what: 'To:full ERROR 5.1.1' },
  { rcpt: 'sales@example.test', what: 'same user, other local domain: no entry' },
  { rcpt: 'info@example.test', what: 'To:info@ REJECT (local)' },
  { rcpt: 'info@foreign.example', what: 'To:info@ on a foreign domain (U not used)' },
  { rcpt: 'plus+tag@example.test', what: 'To:plus+*@domain' },
  { rcpt: 'detail+x@example.test', what: 'To:detail@ matches detail+x@ (local)' },
  { rcpt: 'Mixed.Case@example.test', what: 'To: key with capitals' },
  { rcpt: 'x@tempdest.example', what: 'To:domain 451' },
  { rcpt: 'x@relayto.example', what: 'To:domain RELAY' },
  { rcpt: 'x@deep.relayto.example', what: 'To:parent domain RELAY' },
  { rcpt: 'x@partner.example', what: 'worked: To:partner.example RELAY' },
  { rcpt: 'x@mx.partner.example', what: 'subdomain of To:partner.example RELAY' },
  { rcpt: 'x@relay.example.test', what: 'RELAY_DOMAIN' },
  { rcpt: 'x@sub.relay.example.test', what: 'RELAY_DOMAIN subdomain' },
  { rcpt: 'x@sub.example.test', what: 'subdomain of a local domain (not local, not relay)' },
  { rcpt: 'x@sender-untagged.example', what: 'untagged domain ERROR applies to recipients' },
  { rcpt: 'x@[127.0.0.1]', what: 'address literal [127.0.0.1] (class w)' },
  { rcpt: 'x@foreign.example', what: 'no entry, foreign' },
  { rcpt: 'postmaster', what: 'unqualified postmaster' },
  { rcpt: 'localuser', what: 'unqualified user' },
  { rcpt: 'hater@example.test', what: 'Spam:HATER (friend mode)' },
  { rcpt: 'pal@example.test', what: 'Spam:full FRIEND' },
  { rcpt: 'x@friendly.example', what: 'Spam:domain FRIEND (relayable: To:friendly.example RELAY)' },
  { rcpt: 'x@tagwin.example', what: 'untagged REJECT applies to recipients (From: OK does not)' },
  { rcpt: 'x@sub.dotted.example', what: 'To:.dotted.example without lookupdotdomain' },
  { rcpt: 'hash@example.test', what: "To:full ERROR text with '#' inside" },
];
RECIPIENTS.forEach(({ rcpt, what }, i) => {
  add({
    id: `rcpt:${i + 1}:${rcpt}`,
    title: `recipient ${what}; unnamed neutral client`,
    client: '127.0.0.3',
    from: NEUTRAL_SENDER,
    rcpts: [rcpt],
  });
});
for (const [i, rcpt] of [
  'x@foreign.example',
  'x@closed.example',
  'x@okdest.example',
  'bogus_user@foreign.example',
  'info@foreign.example',
  'nobody@partner.example',
  'spam@uce.uce.com',
  'x@tempdest.example',
  'junk@other.example.gr.jp',
  'blocked@example.test',
].entries()) {
  add({
    id: `relayclient:${i + 1}:${rcpt}`,
    title: `recipient ${rcpt} from a Connect:ip RELAY client`,
    client: '127.0.0.15',
    from: NEUTRAL_SENDER,
    rcpts: [rcpt],
  });
}

// ---------------------------------------------------------------------------------------------
// 4. Combinations: Spam FRIEND exemptions, several recipients, DISCARD/QUARANTINE mixes.
const COMBOS: AccessCase[] = [
  {
    id: 'combo:friend-vs-reject-client',
    title: 'client REJECT: abuse@ (FRIEND) accepted, pal@ (FRIEND) accepted, user@ refused',
    client: '127.0.0.10',
    from: NEUTRAL_SENDER,
    rcpts: ['abuse@example.test', 'pal@example.test', LOCAL, 'postmaster@local.example'],
  },
  {
    id: 'combo:friend-vs-reject-sender',
    title: 'sender REJECT: FRIEND recipients skip the sender check too',
    client: '127.0.0.2',
    from: 'x@spamdomain.example',
    rcpts: ['abuse@example.test', LOCAL, 'pal@example.test'],
  },
  {
    id: 'combo:friend-vs-discard-client',
    title: 'client DISCARD: FRIEND recipient first, then a plain one',
    client: '127.0.0.13',
    from: NEUTRAL_SENDER,
    rcpts: ['abuse@example.test', LOCAL],
  },
  {
    id: 'combo:friend-domain-reject-client',
    title: 'client REJECT: Spam:friendly.example FRIEND (foreign, To: RELAY)',
    client: '127.0.0.10',
    from: NEUTRAL_SENDER,
    rcpts: ['x@friendly.example', 'x@relayto.example'],
  },
  {
    id: 'combo:friend-foreign-unrelayable',
    title: 'FRIEND does not grant relaying: abuse@foreign.example',
    client: '127.0.0.2',
    from: NEUTRAL_SENDER,
    rcpts: ['abuse@foreign.example'],
  },
  {
    id: 'combo:friend-local-part-nonlocal',
    title: 'Spam:abuse@ (U) on a relay domain recipient, client REJECT',
    client: '127.0.0.10',
    from: NEUTRAL_SENDER,
    rcpts: ['abuse@relay.example.test', 'abuse@local.example'],
  },
  {
    id: 'combo:hater-reject-client',
    title: 'client REJECT: Spam:hater@ HATER (friend mode) is refused like any other',
    client: '127.0.0.10',
    from: NEUTRAL_SENDER,
    rcpts: ['hater@example.test'],
  },
  {
    id: 'combo:mixed-rcpts',
    title: 'one transaction: blocked, accepted, relayed, relay denied, 450, discard',
    client: '127.0.0.2',
    from: NEUTRAL_SENDER,
    rcpts: [
      'blocked@example.test',
      LOCAL,
      'x@relayto.example',
      FOREIGN,
      'busy@example.test',
      'discard@example.test',
    ],
  },
  {
    id: 'combo:quarantine-and-discard',
    title: 'QUARANTINE and DISCARD recipients in one message (DISCARD wins)',
    client: '127.0.0.2',
    from: NEUTRAL_SENDER,
    rcpts: ['hold@example.test', 'discard@example.test', LOCAL],
  },
  {
    id: 'combo:two-quarantines',
    title: 'client QUARANTINE and recipient QUARANTINE (last reason wins)',
    client: '127.0.0.14',
    from: NEUTRAL_SENDER,
    rcpts: [LOCAL, 'hold@example.test'],
  },
  {
    id: 'combo:sender-and-rcpt-quarantine',
    title: 'sender QUARANTINE and recipient QUARANTINE',
    client: '127.0.0.2',
    from: 'x@quarantine2.example',
    rcpts: ['hold@example.test', LOCAL],
  },
  {
    id: 'combo:discard-foreign-from-unrelayable',
    title: 'To:discard@ local and a foreign DISCARD recipient from an unnamed client',
    client: '127.0.0.2',
    from: NEUTRAL_SENDER,
    rcpts: ['spam@uce.uce.com', LOCAL],
  },
  {
    id: 'combo:discard-sender-foreign',
    title: 'sender DISCARD, foreign recipient (relay check still applies?)',
    client: '127.0.0.2',
    from: 'spam@uce.uce.com',
    rcpts: [FOREIGN, LOCAL],
  },
  {
    id: 'combo:relay-sender-foreign',
    title: 'From: RELAY does not allow relaying',
    client: '127.0.0.2',
    from: 'x@relaysender.example',
    rcpts: [FOREIGN],
  },
  {
    id: 'combo:ok-sender-relay-denied',
    title: 'From: OK does not allow relaying; client REJECT skipped for the local rcpt',
    client: '127.0.0.10',
    from: 'x@example.com',
    rcpts: [FOREIGN, LOCAL],
  },
  {
    id: 'combo:reject-client-relay-to',
    title: 'client REJECT to a To: RELAY domain: client refusal wins',
    client: '127.0.0.10',
    from: NEUTRAL_SENDER,
    rcpts: ['x@partner.example'],
  },
  {
    id: 'combo:rcpt-reject-before-sender',
    title: 'recipient REJECT reported before a sender REJECT',
    client: '127.0.0.2',
    from: 'x@spamdomain.example',
    rcpts: ['blocked@example.test', 'info@example.test'],
  },
  {
    id: 'combo:rcpt-ok-sender-reject',
    title: 'recipient To:okdest.example OK (foreign) with sender REJECT from a relay client',
    client: '127.0.0.15',
    from: 'x@spamdomain.example',
    rcpts: ['x@okdest.example'],
  },
  {
    id: 'combo:null-sender-reject-client-friend',
    title: 'null sender from a REJECT client to abuse@ (FRIEND) and user@',
    client: '127.0.0.11',
    from: '',
    rcpts: ['abuse@example.test', LOCAL],
  },
  {
    id: 'combo:null-sender-foreign',
    title: 'null sender, foreign recipient, unnamed client',
    client: '127.0.0.2',
    from: '',
    rcpts: [FOREIGN, 'x@relayto.example'],
  },
  {
    id: 'combo:null-sender-relay-client',
    title: 'null sender, foreign recipient, RELAY client',
    client: '127.0.0.21',
    from: '',
    rcpts: [FOREIGN],
  },
  {
    id: 'combo:421-client-then-more',
    title: 'client 421 (delay_checks: at each RCPT), then a FRIEND recipient',
    client: '127.0.0.38',
    from: NEUTRAL_SENDER,
    rcpts: [LOCAL, 'abuse@example.test', 'pal@example.test'],
  },
  {
    id: 'combo:421-sender',
    title: 'sender 421 text, then a FRIEND recipient',
    client: '127.0.0.2',
    from: 'x@busy.example',
    rcpts: [LOCAL, 'abuse@example.test'],
  },
  {
    id: 'combo:tempfail-client-friend',
    title: 'client 451: FRIEND recipient accepted, others 451',
    client: '127.0.0.12',
    from: NEUTRAL_SENDER,
    rcpts: ['abuse@example.test', LOCAL, 'x@relayto.example'],
  },
  {
    id: 'combo:named-relay-client-rcpt-checks',
    title: 'RELAY client: blocklisted recipients still refused',
    client: '127.0.0.21',
    from: NEUTRAL_SENDER,
    rcpts: ['blocked@example.test', 'x@closed.example', 'nobody@example.test', FOREIGN],
  },
  {
    id: 'combo:relay-client-sender-reject',
    title: 'RELAY client, sender REJECT',
    client: '127.0.0.21',
    from: 'x@spamdomain.example',
    rcpts: [FOREIGN],
  },
  {
    id: 'combo:helo-spoof',
    title: 'unnamed client saying EHLO mx.partner.example gets no relay permission',
    client: '127.0.0.2',
    helo: 'mx.partner.example',
    from: NEUTRAL_SENDER,
    rcpts: [FOREIGN],
  },
  {
    id: 'combo:helo-bracket-spoof',
    title: 'client saying EHLO [127.0.0.30] (a Connect:[ip] RELAY) from another address',
    client: '127.0.0.3',
    helo: '[127.0.0.30]',
    from: NEUTRAL_SENDER,
    rcpts: [LOCAL],
  },
  {
    id: 'combo:helo-verb',
    title: 'HELO instead of EHLO, client REJECT',
    client: '127.0.0.10',
    heloVerb: 'HELO',
    from: NEUTRAL_SENDER,
    rcpts: [LOCAL],
  },
  {
    id: 'combo:helo-verb-ok',
    title: 'HELO instead of EHLO, neutral client, foreign and local',
    client: '127.0.0.2',
    heloVerb: 'HELO',
    from: NEUTRAL_SENDER,
    rcpts: [LOCAL, FOREIGN],
  },
  {
    id: 'combo:class-r-name-relays',
    title: 'client named inside RELAY_DOMAIN relays to a foreign domain, sender REJECT',
    client: '127.0.0.31',
    from: 'x@spamdomain.example',
    rcpts: [LOCAL],
  },
  {
    id: 'combo:upper-case-rcpt',
    title: 'upper-case recipient address matching To:blocked@example.test',
    client: '127.0.0.2',
    from: NEUTRAL_SENDER,
    rcpts: ['BLOCKED@EXAMPLE.TEST', 'User@Example.Test'],
  },
  {
    id: 'combo:ok-sender-blocked-rcpt',
    title: 'sender OK skips the client REJECT, not the recipient blocklist',
    client: '127.0.0.10',
    from: 'x@oksender.example',
    rcpts: ['blocked@example.test', LOCAL, 'nobody@example.test'],
  },
  {
    id: 'combo:relay-client-ok-sender-closed-rcpt',
    title: 'RELAY client, OK sender, To:closed.example ERROR and a foreign recipient',
    client: '127.0.0.24',
    from: 'x@oksender.example',
    rcpts: ['x@closed.example', FOREIGN],
  },
  {
    id: 'combo:no-data',
    title: 'all recipients refused: no DATA',
    client: '127.0.0.10',
    from: NEUTRAL_SENDER,
    rcpts: [LOCAL, 'x@relayto.example'],
  },
];
for (const c of COMBOS) add(c);

// ---------------------------------------------------------------------------------------------

const seen = new Set<string>();
for (const c of cases) {
  if (seen.has(c.id)) throw new Error(`access-db matrix: duplicate case id ${c.id}`);
  seen.add(c.id);
}

export const ACCESS_CASES: readonly AccessCase[] = cases;

/** The HELO argument a case sends: its own, or one derived from the id (stable, unique). */
export function heloOf(c: AccessCase): string {
  return c.helo ?? `h${createHash('sha1').update(c.id).digest('hex').slice(0, 10)}.client.example`;
}
