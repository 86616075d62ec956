/*
 * loadgen.c: the benchmark's load generator. It plays the MTA side of milter protocol v6 the way
 * Postfix's smtpd/cleanup do (milter-protocol.md §6.2), single-threaded on epoll, so that it is
 * never the bottleneck, and prints one JSON object of results on stdout.
 * Called by bench/run.ts (built into bench/c/build/loadgen) and by hand:
 *
 *   loadgen --target inet:PORT@HOST|unix:/path [--concurrency N] [--duration SEC] [--warmup SEC]
 *           [--messages-per-connection K] [--clients CIDR] [--rcpt ADDR]... [--body-bytes N]
 *           [--headers N] [--mime] [--timeout SEC] [--drain SEC] [--trace N]
 *           [--verify-close N] [--timeline MS]
 *
 * Per message (one milter connection per message by default, as Postfix opens one per SMTP
 * session): OPTNEG offering version 6, actions 0x1FF, protocol 0x1FFFFF; then, honouring what the
 * milter negotiated (commands with a NO* bit are not sent, no reply is awaited where an NR_* bit is
 * set, a v6 macro list replaces the default list of that stage), D(C)+CONNECT, D(H)+HELO,
 * D(M)+MAIL, per recipient D(R)+RCPT, D(T)+DATA, per header D(L)+HEADER, D(N)+EOH, per body chunk
 * (<= 65535 bytes) D(B)+BODY, D(E)+EOM (modification packets are read until the final reply), then
 * ABORT (Postfix sends one after every transaction), then QUIT and close. Macros are sent even for
 * suppressed commands. Everything written between two awaited replies goes out in one write().
 * A RCPT answered with r/t/y is a per-recipient rejection: the message carries on with the others.
 * Like Postfix, the generator closes right after QUIT; only for the first --verify-close
 * connections (default 100) it reads on until the milter closes, so that a reply to a command
 * negotiated NR_* (which shifts every later reply by one) is always caught, not only when the
 * stray bytes happen to arrive before the close. --trace N dumps the packets of the first N
 * connections to stderr.
 *
 * The message: headers From, To, Subject, Date, Message-ID (<qid@client.example>), then filler
 * X-Bench-N headers up to --headers N (default 5); the body is --body-bytes (default 10240) of
 * plain text lines. With --mime it is what a mail client sends with one small attachment instead:
 * the headers gain MIME-Version, Content-Type (multipart/mixed) and X-Mailer (default --headers 8,
 * at least 8), and the body, still exactly --body-bytes long, is a multipart/mixed message of a
 * text/plain part and a base64 application/pdf part named report.pdf (whole 76-character lines,
 * about 80 % of the body), so that a milter's MIME walk has real parts to walk.
 *
 * Measured: latency of every awaited reply per stage (write of the batch holding the command ->
 * its final reply), whole-message latency (socket connect start -> final EOM reply; for the 2nd..Kth
 * message of a connection from the write of its MAIL batch), all samples kept and sorted at the end;
 * messages/s completed inside the window (after --warmup, for --duration); errors; the generator's
 * own CPU (getrusage user+sys / wall over the window, % of one core). --timeline MS adds a
 * "timeline" object: the whole run (warm-up and drain included) cut into MS-millisecond buckets by
 * the time a message ended, each with the messages that ended in it, their latency p50/p99/max,
 * tempfail replies and errors, and the wall-clock time (ms since the epoch) of bucket 0, so that a
 * caller can line events up with it (bench/access-db.ts does, around an access map swap).
 *
 * Failure: bad options -> message on stderr, exit 64; cannot reach the target at all -> the JSON
 * still comes out with connect_failed errors. Exit 2 if the milter committed a protocol error
 * (malformed packet, reply where none is owed, modification before EOM, ...), 3 on other errors
 * (connection failures or losses, timeouts, unexpected tempfail/reject replies), 0 otherwise.
 */

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* ---- protocol constants (mfdef.h) ---- */

#define SMFIP_NOCONNECT 0x00000001u
#define SMFIP_NOHELO 0x00000002u
#define SMFIP_NOMAIL 0x00000004u
#define SMFIP_NORCPT 0x00000008u
#define SMFIP_NOBODY 0x00000010u
#define SMFIP_NOHDRS 0x00000020u
#define SMFIP_NOEOH 0x00000040u
#define SMFIP_NR_HDR 0x00000080u
#define SMFIP_NOUNKNOWN 0x00000100u
#define SMFIP_NODATA 0x00000200u
#define SMFIP_NR_CONN 0x00001000u
#define SMFIP_NR_HELO 0x00002000u
#define SMFIP_NR_MAIL 0x00004000u
#define SMFIP_NR_RCPT 0x00008000u
#define SMFIP_NR_DATA 0x00010000u
#define SMFIP_NR_EOH 0x00040000u
#define SMFIP_NR_BODY 0x00080000u

#define SMFIF_ADDHDRS 0x001u
#define SMFIF_CHGBODY 0x002u
#define SMFIF_ADDRCPT 0x004u
#define SMFIF_DELRCPT 0x008u
#define SMFIF_CHGHDRS 0x010u
#define SMFIF_QUARANTINE 0x020u
#define SMFIF_CHGFROM 0x040u
#define SMFIF_ADDRCPT_PAR 0x080u
#define SMFIF_SETSYMLIST 0x100u

#define OFFER_VERSION 6u
#define OFFER_ACTIONS 0x1FFu
#define OFFER_PROTOCOL 0x1FFFFFu
#define MILTER_CHUNK_SIZE 65535
/* Postfix accepts reply lengths up to INT_MAX/2; we cap lower, a null milter never comes close. */
#define MAX_REPLY_LEN (16u * 1024u * 1024u)

/* ---- stages ---- */

enum stage {
	ST_OPTNEG,
	ST_CONNECT,
	ST_HELO,
	ST_MAIL,
	ST_RCPT,
	ST_DATA,
	ST_HEADER,
	ST_EOH,
	ST_BODY,
	ST_EOM,
	ST__COUNT,
	ST_DONE = 100 /* message finished: ABORT, then next message or QUIT */
};

static const char *const stage_name[ST__COUNT] = {"optneg", "connect", "helo", "mail", "rcpt",
						   "data",   "header",  "eoh",  "body", "eom"};
static const uint32_t stage_no_bit[ST__COUNT] = {0,		SMFIP_NOCONNECT, SMFIP_NOHELO, SMFIP_NOMAIL,
						 SMFIP_NORCPT,	SMFIP_NODATA,	 SMFIP_NOHDRS, SMFIP_NOEOH,
						 SMFIP_NOBODY, 0};
static const uint32_t stage_nr_bit[ST__COUNT] = {0,		 SMFIP_NR_CONN, SMFIP_NR_HELO, SMFIP_NR_MAIL,
						 SMFIP_NR_RCPT, SMFIP_NR_DATA, SMFIP_NR_HDR,	SMFIP_NR_EOH,
						 SMFIP_NR_BODY, 0};
static const char stage_cmd[ST__COUNT] = {'O', 'C', 'H', 'M', 'R', 'T', 'L', 'N', 'B', 'E'};
/* v6 macro-list stage id whose list applies to the D packet of each stage (Postfix: L uses the
 * end-of-header list, B the end-of-data list); -1 = none. */
static const int stage_symlist[ST__COUNT] = {-1, 0, 1, 2, 3, 4, 6, 6, 5, 5};
static const char *const symlist_name[7] = {"connect", "helo", "mail", "rcpt", "data", "eom", "eoh"};

/* Default macro lists (what bench sends when the milter asks for nothing else). */
static const char *const default_macros[ST__COUNT] = {
    NULL, "j _ v {daemon_name} {client_addr} {client_name}", "", "i {mail_addr}", "{rcpt_addr}",
    "", "", "", "", "i"};

/* ---- options ---- */

static struct {
	const char *target;
	int family; /* AF_INET, AF_INET6, AF_UNIX */
	struct sockaddr_storage addr;
	socklen_t addrlen;
	int concurrency;
	double duration, warmup, timeout, drain;
	int per_conn;
	const char *clients;
	uint32_t pool_base, pool_size;
	const char *rcpt[64];
	int nrcpt;
	size_t body_bytes;
	int headers;
	int headers_given;
	int mime;
	int trace;
	int verify_close;
	double timeline_ms;
} opt = {.verify_close = 100,
	 .concurrency = 1,
	 .duration = 10,
	 .warmup = 2,
	 .timeout = 30,
	 .drain = 10,
	 .per_conn = 1,
	 .clients = "192.0.2.0/24",
	 .body_bytes = 10240,
	 .headers = 5};

/* ---- helpers ---- */

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("loadgen: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(64);
}

static void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n);
	if (q == NULL) {
		fputs("loadgen: out of memory\n", stderr);
		exit(70);
	}
	return q;
}

struct buf {
	uint8_t *p;
	size_t len, off, cap;
};

static void buf_reserve(struct buf *b, size_t extra)
{
	if (b->len + extra <= b->cap)
		return;
	size_t cap = b->cap == 0 ? 4096 : b->cap;
	while (cap < b->len + extra)
		cap *= 2;
	b->p = xrealloc(b->p, cap);
	b->cap = cap;
}

static void buf_put(struct buf *b, const void *data, size_t n)
{
	buf_reserve(b, n);
	memcpy(b->p + b->len, data, n);
	b->len += n;
}

static void buf_u32(struct buf *b, uint32_t v)
{
	uint8_t x[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
	buf_put(b, x, 4);
}

static void buf_str(struct buf *b, const char *s)
{
	buf_put(b, s, strlen(s) + 1);
}

/* Starts a packet; returns the offset of its length field for pkt_end(). */
static size_t pkt_begin(struct buf *b, char cmd)
{
	size_t at = b->len;
	buf_u32(b, 0);
	buf_put(b, &cmd, 1);
	return at;
}

static void pkt_end(struct buf *b, size_t at)
{
	uint32_t len = (uint32_t)(b->len - at - 4);
	b->p[at] = (uint8_t)(len >> 24);
	b->p[at + 1] = (uint8_t)(len >> 16);
	b->p[at + 2] = (uint8_t)(len >> 8);
	b->p[at + 3] = (uint8_t)len;
}

static uint32_t get_u32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* ---- sample sets ---- */

struct samples {
	uint64_t *v;
	size_t n, cap;
};

static void sample_add(struct samples *s, uint64_t ns)
{
	if (s->n == s->cap) {
		s->cap = s->cap == 0 ? 65536 : s->cap * 2;
		s->v = xrealloc(s->v, s->cap * sizeof *s->v);
	}
	s->v[s->n++] = ns;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* ---- results ---- */

enum err_kind { E_PROTOCOL, E_UNEXPECTED, E_CONNECT, E_LOST, E_TIMEOUT, E__COUNT };
static const char *const err_name[E__COUNT] = {"protocol", "unexpected_reply", "connect_failed",
					       "connection_lost", "timeout"};

static struct {
	struct samples lat[ST__COUNT];
	struct samples message;
	uint64_t messages;	 /* completed in window */
	uint64_t connections; /* opened in window */
	uint64_t replies[ST__COUNT][128];
	uint64_t mods[128];
	uint64_t dispositions[ST__COUNT][128];
	uint64_t errors[E__COUNT];
	uint64_t warnings_mod_without_action, warnings_proto_outside_offer, warnings_symlist_ignored,
	    warnings_no_close_after_quit;
	char first_error[512];
	char first_warning[512];
	char reply_sample[ST__COUNT][128][160];
	char mod_sample[128][200];
	/* whole run, warm-up and drain included: to compare with what the milter counted */
	uint64_t t_connections, t_optneg, t_messages, t_sent[ST__COUNT];
	uint64_t unfinished;
	/* negotiation (first connection; later ones compared against it) */
	int have_neg;
	uint32_t neg_version, neg_actions, neg_protocol;
	char *neg_symlist[7];
	uint64_t neg_mismatch;
} R;

static uint64_t t0, warm_end, t_end;
static double t0_epoch_ms;

/* ---- timeline (--timeline MS) ---- */

struct tl_bucket {
	struct samples message;
	uint64_t tempfail, errors;
};
static struct tl_bucket *tl;
static size_t tl_n;

/* The bucket of time t, or NULL without --timeline. */
static struct tl_bucket *tl_at(uint64_t t)
{
	if (opt.timeline_ms <= 0 || t < t0)
		return NULL;
	size_t i = (size_t)((double)(t - t0) / 1e6 / opt.timeline_ms);
	if (i >= tl_n) {
		size_t n = i + 64;
		tl = xrealloc(tl, n * sizeof *tl);
		memset(tl + tl_n, 0, (n - tl_n) * sizeof *tl);
		tl_n = n;
	}
	return &tl[i];
}

static int in_window(uint64_t t)
{
	return t >= warm_end && t < t_end;
}

/* ---- connections ---- */

enum phase { P_IDLE, P_CONNECTING, P_SESSION, P_CLOSING };

struct conn {
	int fd;
	int slot;
	enum phase phase;
	int stage; /* next stage to send (enum stage or ST_DONE) */
	int awaiting;	/* stage whose reply is owed, or -1 */
	uint64_t await_t, conn_t, msg_t;
	int msg_no, rcpt_i, hdr_i, rcpt_ok, epollout;
	size_t body_off;
	uint32_t version, actions, protocol;
	char *symlist[7];
	char ip[16];
	uint16_t port;
	char qid[16];
	uint64_t serial;
	struct buf in, out;
};

static int epfd;
static struct conn *conns;
static uint64_t *backoff_until;
static uint64_t conn_serial;
static int active;
static int stopping;

static char *body;
static size_t message_size;
static const char helo_name[] = "mail.client.example";
static const char sender[] = "<sender@client.example>";
static const char sender_addr[] = "sender@client.example";
static const char mime_boundary[] = "=_bench_6f1c2a9e";

static void record_error(enum err_kind k, struct conn *c, const char *fmt, ...)
{
	R.errors[k]++;
	struct tl_bucket *b = tl_at(now_ns());
	if (b != NULL)
		b->errors++;
	if (R.first_error[0] == '\0') {
		char msg[400];
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(msg, sizeof msg, fmt, ap);
		va_end(ap);
		snprintf(R.first_error, sizeof R.first_error, "%s: conn %llu stage %s: %s", err_name[k],
			 c != NULL ? (unsigned long long)c->serial : 0ull,
			 c != NULL && c->awaiting >= 0 ? stage_name[c->awaiting] : "-", msg);
	}
}

static void record_warning(uint64_t *counter, const char *fmt, ...)
{
	(*counter)++;
	if (R.first_warning[0] == '\0') {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(R.first_warning, sizeof R.first_warning, fmt, ap);
		va_end(ap);
	}
}

/* Printable rendering of a payload, for traces and samples. */
static void render(char *dst, size_t dstlen, const uint8_t *p, size_t n)
{
	size_t o = 0;
	for (size_t i = 0; i < n && o + 5 < dstlen; i++) {
		uint8_t ch = p[i];
		if (ch == 0) {
			dst[o++] = '\\';
			dst[o++] = '0';
		} else if (ch == '\\' || ch == '"') {
			dst[o++] = '\\';
			dst[o++] = (char)ch;
		} else if (ch >= 0x20 && ch < 0x7f) {
			dst[o++] = (char)ch;
		} else {
			o += (size_t)snprintf(dst + o, dstlen - o, "\\x%02x", ch);
		}
	}
	dst[o < dstlen ? o : dstlen - 1] = '\0';
}

static void trace_packets(struct conn *c, const char *dir, const uint8_t *p, size_t n)
{
	if (c->serial > (uint64_t)opt.trace)
		return;
	while (n >= 5) {
		uint32_t len = get_u32(p);
		if (len < 1 || len + 4 > n)
			break;
		char txt[2048];
		render(txt, sizeof txt, p + 5, len - 1);
		fprintf(stderr, "[%llu] %s len=%u '%c' %s\n", (unsigned long long)c->serial, dir, len,
			p[4], txt);
		p += 4 + len;
		n -= 4 + len;
	}
}

static void conn_close(struct conn *c);
static void advance(struct conn *c);

static void set_epollout(struct conn *c, int on)
{
	if (c->epollout == on)
		return;
	struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c};
	epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
	c->epollout = on;
}

/* Writes what is queued; returns -1 if the connection failed (and was closed). */
static int flush_out(struct conn *c)
{
	while (c->out.off < c->out.len) {
		ssize_t w = send(c->fd, c->out.p + c->out.off, c->out.len - c->out.off, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				set_epollout(c, 1);
				return 0;
			}
			if (errno == EINTR)
				continue;
			record_error(E_LOST, c, "write: %s", strerror(errno));
			conn_close(c);
			return -1;
		}
		c->out.off += (size_t)w;
	}
	c->out.len = c->out.off = 0;
	set_epollout(c, 0);
	if (c->phase == P_CLOSING) {
		/* QUIT is out. Anything the milter sent that we have not consumed is a stray reply. */
		if (c->serial <= (uint64_t)opt.verify_close) {
			/* verification sample: read on until the milter closes; on_readable reports
			 * whatever arrives (and what is still buffered) as a reply nobody was owed */
			c->await_t = now_ns();
			return 0;
		}
		uint8_t extra[64];
		ssize_t r = recv(c->fd, extra, sizeof extra, MSG_DONTWAIT);
		size_t unread = c->in.len - c->in.off + (r > 0 ? (size_t)r : 0);
		if (unread > 0)
			record_error(E_PROTOCOL, c,
				     "%zu byte(s) after the last owed reply (a reply to an NR_* command?)", unread);
		conn_close(c);
		return -1;
	}
	return 0;
}

/* ---- macros ---- */

/* Value of a macro for this connection/message, or NULL if Postfix would not send it. */
static const char *macro_value(struct conn *c, const char *name, char *tmp, size_t tmplen)
{
	char n[64];
	size_t l = strlen(name);
	if (l >= 2 && name[0] == '{' && name[l - 1] == '}') {
		name++;
		l -= 2;
	}
	if (l == 0 || l >= sizeof n)
		return NULL;
	memcpy(n, name, l);
	n[l] = '\0';
	if (strcmp(n, "j") == 0 || strcmp(n, "daemon_name") == 0)
		return "mx.bench.example";
	if (strcmp(n, "v") == 0)
		return "Postfix 3.7.11";
	if (strcmp(n, "_") == 0) {
		snprintf(tmp, tmplen, "unknown [%s]", c->ip);
		return tmp;
	}
	if (strcmp(n, "client_addr") == 0)
		return c->ip;
	if (strcmp(n, "client_name") == 0 || strcmp(n, "client_ptr") == 0)
		return "unknown";
	if (strcmp(n, "client_port") == 0) {
		snprintf(tmp, tmplen, "%u", c->port);
		return tmp;
	}
	if (strcmp(n, "daemon_addr") == 0)
		return "127.0.0.1";
	if (strcmp(n, "daemon_port") == 0)
		return "25";
	if (strcmp(n, "i") == 0)
		return c->qid;
	if (strcmp(n, "mail_addr") == 0)
		return sender_addr;
	if (strcmp(n, "rcpt_addr") == 0) {
		const char *r = opt.rcpt[c->rcpt_i < opt.nrcpt ? c->rcpt_i : opt.nrcpt - 1];
		size_t rl = strlen(r);
		if (rl >= 2 && r[0] == '<' && r[rl - 1] == '>') {
			snprintf(tmp, tmplen, "%.*s", (int)(rl - 2), r + 1);
			return tmp;
		}
		return r;
	}
	return NULL; /* not authenticated, no TLS: Postfix sends nothing for these */
}

static void emit_macros(struct conn *c, int stage)
{
	const char *list = default_macros[stage];
	int sl = stage_symlist[stage];
	if (sl >= 0 && c->symlist[sl] != NULL)
		list = c->symlist[sl];
	size_t at = pkt_begin(&c->out, 'D');
	char code = stage_cmd[stage];
	buf_put(&c->out, &code, 1);
	const char *s = list;
	while (*s != '\0') {
		while (*s == ' ' || *s == ',' || *s == '\t')
			s++;
		const char *e = s;
		while (*e != '\0' && *e != ' ' && *e != ',' && *e != '\t')
			e++;
		if (e > s && (size_t)(e - s) < 64) {
			char name[64], tmp[128];
			memcpy(name, s, (size_t)(e - s));
			name[e - s] = '\0';
			const char *v = macro_value(c, name, tmp, sizeof tmp);
			if (v != NULL) {
				buf_str(&c->out, name);
				buf_str(&c->out, v);
			}
		}
		s = e;
	}
	pkt_end(&c->out, at);
}

/* ---- message content ---- */

static void header_at(struct conn *c, int i, char *name, size_t nl, char *value, size_t vl)
{
	switch (i) {
	case 0:
		snprintf(name, nl, "From");
		snprintf(value, vl, "Bench Sender %s", sender);
		break;
	case 1:
		snprintf(name, nl, "To");
		snprintf(value, vl, "%s", opt.rcpt[0]);
		break;
	case 2:
		snprintf(name, nl, "Subject");
		snprintf(value, vl, "benchmark message %s", c->qid);
		break;
	case 3:
		snprintf(name, nl, "Date");
		snprintf(value, vl, "Mon, 1 Dec 2025 18:00:00 +0000");
		break;
	case 4:
		snprintf(name, nl, "Message-ID");
		snprintf(value, vl, "<%s@client.example>", c->qid);
		break;
	default: {
		int filler = i - 4;
		if (opt.mime) {
			if (i == 5) {
				snprintf(name, nl, "MIME-Version");
				snprintf(value, vl, "1.0");
				break;
			}
			if (i == 6) {
				snprintf(name, nl, "Content-Type");
				snprintf(value, vl, "multipart/mixed; boundary=\"%s\"", mime_boundary);
				break;
			}
			if (i == 7) {
				snprintf(name, nl, "X-Mailer");
				snprintf(value, vl, "Bench Mail Client 1.0");
				break;
			}
			filler = i - 7;
		}
		snprintf(name, nl, "X-Bench-%d", filler);
		snprintf(value, vl, "filler header number %d for the milter benchmark", filler);
		break;
	}
	}
}

/* The body: --body-bytes of CRLF text lines, or (--mime) a multipart/mixed message of exactly
 * that size: a text part and a base64 report.pdf part. */
static void build_body(void)
{
	size_t n = opt.body_bytes;
	body = xrealloc(NULL, n + 1);
	if (!opt.mime) {
		for (size_t i = 0; i < n; i++) {
			size_t col = i % 78;
			body[i] = col == 76 ? '\r' : col == 77 ? '\n' : (char)('a' + (i / 78 + col) % 26);
		}
		return;
	}
	char head[512], mid[512], tail[128];
	int hl = snprintf(head, sizeof head,
			  "This is a multi-part message in MIME format.\r\n\r\n--%s\r\n"
			  "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n",
			  mime_boundary);
	int ml = snprintf(mid, sizeof mid,
			  "\r\n--%s\r\nContent-Type: application/pdf; name=\"report.pdf\"\r\n"
			  "Content-Disposition: attachment; filename=\"report.pdf\"\r\n"
			  "Content-Transfer-Encoding: base64\r\n\r\n",
			  mime_boundary);
	int tl = snprintf(tail, sizeof tail, "--%s--\r\n", mime_boundary);
	size_t fixed = (size_t)hl + (size_t)ml + (size_t)tl;
	if (n < fixed + 200)
		die("--mime needs --body-bytes of at least %zu", fixed + 200);
	size_t avail = n - fixed;
	size_t lines = avail * 4 / 5 / 78; /* base64: 76 characters + CRLF per line */
	if (lines == 0)
		lines = 1;
	size_t b64 = lines * 78, text = avail - b64;
	char *p = body;
	memcpy(p, head, (size_t)hl);
	p += hl;
	/* the text part: words on lines of at most 72 characters; its last two bytes are CRLF */
	static const char *const words[] = {"please", "find", "the", "quarterly", "report", "attached",
					    "as", "discussed", "in", "our", "meeting", "regards"};
	size_t col = 0, w = 0;
	for (size_t i = 0; i + 2 < text;) {
		const char *word = words[w++ % (sizeof words / sizeof *words)];
		size_t wl = strlen(word);
		if (col > 0 && col + 1 + wl > 72) {
			if (i + 4 >= text)
				break;
			*p++ = '\r';
			*p++ = '\n';
			i += 2;
			col = 0;
			continue;
		}
		if (col > 0) {
			*p++ = ' ';
			i++;
			col++;
		}
		for (size_t k = 0; k < wl && i + 2 < text; k++, i++, col++)
			*p++ = word[k];
	}
	while ((size_t)(p - body) < (size_t)hl + text - 2)
		*p++ = '.';
	*p++ = '\r';
	*p++ = '\n';
	memcpy(p, mid, (size_t)ml);
	p += ml;
	static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	uint32_t x = 2463534242u;
	for (size_t l = 0; l < lines; l++) {
		for (int k = 0; k < 76; k++) {
			x ^= x << 13;
			x ^= x >> 17;
			x ^= x << 5;
			*p++ = b64chars[x & 63];
		}
		*p++ = '\r';
		*p++ = '\n';
	}
	memcpy(p, tail, (size_t)tl);
	p += tl;
	if ((size_t)(p - body) != n)
		die("internal error: MIME body is %zu bytes, not %zu", (size_t)(p - body), n);
}

static void new_message(struct conn *c)
{
	static uint64_t qseq;
	static const char alphabet[] = "0123456789BCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz";
	uint64_t q = ++qseq;
	char *p = c->qid;
	*p++ = '4';
	*p++ = 'X';
	for (int i = 0; i < 10; i++) {
		*p++ = alphabet[q % 51];
		q /= 51;
	}
	*p = '\0';
	c->rcpt_i = c->hdr_i = c->rcpt_ok = 0;
	c->body_off = 0;
}

/* Appends the command of `stage` (with its D packet first). Returns 1 if a reply is now owed. */
static int emit_command(struct conn *c, int stage)
{
	emit_macros(c, stage);
	if ((c->protocol & stage_no_bit[stage]) != 0)
		return 0;
	size_t at = pkt_begin(&c->out, stage_cmd[stage]);
	switch (stage) {
	case ST_CONNECT: {
		char host[24];
		snprintf(host, sizeof host, "[%s]", c->ip);
		buf_str(&c->out, host);
		buf_put(&c->out, "4", 1);
		uint8_t port[2] = {(uint8_t)(c->port >> 8), (uint8_t)c->port};
		buf_put(&c->out, port, 2);
		buf_str(&c->out, c->ip);
		break;
	}
	case ST_HELO:
		buf_str(&c->out, helo_name);
		break;
	case ST_MAIL: {
		char size[32];
		snprintf(size, sizeof size, "SIZE=%zu", message_size);
		buf_str(&c->out, sender);
		buf_str(&c->out, size);
		break;
	}
	case ST_RCPT:
		buf_str(&c->out, opt.rcpt[c->rcpt_i]);
		break;
	case ST_HEADER: {
		char name[64], value[256];
		header_at(c, c->hdr_i, name, sizeof name, value, sizeof value);
		buf_str(&c->out, name);
		buf_str(&c->out, value);
		break;
	}
	case ST_BODY: {
		size_t n = opt.body_bytes - c->body_off;
		if (n > MILTER_CHUNK_SIZE)
			n = MILTER_CHUNK_SIZE;
		buf_put(&c->out, body + c->body_off, n);
		break;
	}
	default: /* DATA, EOH, EOM: empty */
		break;
	}
	pkt_end(&c->out, at);
	R.t_sent[stage]++;
	return (c->protocol & stage_nr_bit[stage]) == 0;
}

static void simple_packet(struct buf *b, char cmd)
{
	size_t at = pkt_begin(b, cmd);
	pkt_end(b, at);
}

/* The message ended with `code` at `stage`. */
static void finish_message(struct conn *c, int stage, uint8_t code, uint64_t t)
{
	R.t_messages++;
	struct tl_bucket *b = tl_at(t);
	if (b != NULL)
		sample_add(&b->message, t - c->msg_t);
	if (in_window(t)) {
		R.messages++;
		sample_add(&R.message, t - c->msg_t);
		R.dispositions[stage][code & 0x7f]++;
	}
	c->stage = ST_DONE;
}

/* After the message: ABORT as Postfix does, then the next message or QUIT. */
static void end_of_transaction(struct conn *c)
{
	simple_packet(&c->out, 'A');
	if (++c->msg_no < opt.per_conn && !stopping) {
		new_message(c);
		c->stage = ST_MAIL;
		c->msg_t = now_ns();
		return;
	}
	simple_packet(&c->out, 'Q');
	c->phase = P_CLOSING;
}

/* Sends commands until one owes a reply (or the session ends), then writes the batch. */
static void advance(struct conn *c)
{
	for (;;) {
		int owed = 0;
		int st = c->stage;
		switch (st) {
		case ST_CONNECT:
			owed = emit_command(c, st);
			c->stage = ST_HELO;
			break;
		case ST_HELO:
			owed = emit_command(c, st);
			c->stage = ST_MAIL;
			break;
		case ST_MAIL:
			owed = emit_command(c, st);
			c->stage = ST_RCPT;
			break;
		case ST_RCPT:
			if (c->rcpt_i >= opt.nrcpt) {
				if (c->rcpt_ok == 0) {
					/* Postfix refuses DATA itself ("no valid recipients") */
					finish_message(c, ST_RCPT, 'n', now_ns());
					continue;
				}
				c->stage = ST_DATA;
				continue;
			}
			owed = emit_command(c, st);
			if (!owed) {
				c->rcpt_ok++; /* no verdict from the milter: the MTA accepted it */
				c->rcpt_i++;
			}
			break;
		case ST_DATA:
			owed = emit_command(c, st);
			c->stage = ST_HEADER;
			break;
		case ST_HEADER:
			if (c->hdr_i >= opt.headers) {
				c->stage = ST_EOH;
				continue;
			}
			owed = emit_command(c, st);
			c->hdr_i++;
			break;
		case ST_EOH:
			owed = emit_command(c, st);
			c->stage = ST_BODY;
			break;
		case ST_BODY:
			if (c->body_off >= opt.body_bytes) {
				c->stage = ST_EOM;
				continue;
			}
			owed = emit_command(c, st);
			c->body_off += opt.body_bytes - c->body_off > MILTER_CHUNK_SIZE
					   ? MILTER_CHUNK_SIZE
					   : opt.body_bytes - c->body_off;
			break;
		case ST_EOM:
			owed = emit_command(c, st);
			c->stage = ST_DONE;
			break;
		case ST_DONE:
			end_of_transaction(c);
			if (c->phase == P_CLOSING) {
				c->awaiting = -1;
				trace_packets(c, ">", c->out.p + c->out.off, c->out.len - c->out.off);
				flush_out(c);
				return;
			}
			continue;
		default:
			break;
		}
		if (owed) {
			c->awaiting = st;
			c->await_t = now_ns();
			trace_packets(c, ">", c->out.p + c->out.off, c->out.len - c->out.off);
			flush_out(c);
			return;
		}
	}
}

/* ---- replies ---- */

static int empty_reply_code(uint8_t code)
{
	return code == 'c' || code == 'a' || code == 'r' || code == 't' || code == 'd' || code == 's' ||
	       code == 'p';
}

static uint32_t mod_action(uint8_t code)
{
	switch (code) {
	case 'h':
	case 'i':
		return SMFIF_ADDHDRS;
	case 'm':
		return SMFIF_CHGHDRS;
	case 'b':
		return SMFIF_CHGBODY;
	case '+':
		return SMFIF_ADDRCPT;
	case '-':
		return SMFIF_DELRCPT;
	case '2':
		return SMFIF_ADDRCPT_PAR;
	case 'e':
		return SMFIF_CHGFROM;
	case 'q':
		return SMFIF_QUARANTINE;
	default:
		return 0;
	}
}

static int handle_optneg(struct conn *c, uint8_t code, const uint8_t *p, uint32_t n)
{
	if (code != 'O') {
		record_error(E_PROTOCOL, c, "reply to OPTNEG is '%c', not 'O'", code);
		return -1;
	}
	if (n < 12) {
		record_error(E_PROTOCOL, c, "OPTNEG reply payload is %u bytes, needs 12", n);
		return -1;
	}
	c->version = get_u32(p);
	c->actions = get_u32(p + 4);
	c->protocol = get_u32(p + 8);
	if (c->version < 2 || c->version > OFFER_VERSION) {
		record_error(E_PROTOCOL, c, "OPTNEG reply version %u (offered %u)", c->version, OFFER_VERSION);
		return -1;
	}
	if ((c->actions & ~OFFER_ACTIONS) != 0) {
		record_error(E_PROTOCOL, c, "OPTNEG actions 0x%x outside the offer 0x%x (Postfix: request mask conflict)",
			     c->actions, OFFER_ACTIONS);
		return -1;
	}
	if ((c->protocol & ~OFFER_PROTOCOL) != 0)
		record_warning(&R.warnings_proto_outside_offer,
			       "OPTNEG protocol 0x%x has bits outside the offer 0x%x (sendmail would drop the filter)",
			       c->protocol, OFFER_PROTOCOL);
	if (n > 12) {
		if ((c->actions & SMFIF_SETSYMLIST) == 0) {
			record_warning(&R.warnings_symlist_ignored,
				       "OPTNEG reply has %u bytes of macro lists but no SMFIF_SETSYMLIST", n - 12);
		} else {
			uint32_t o = 12;
			while (o + 4 < n) {
				uint32_t id = get_u32(p + o);
				o += 4;
				const uint8_t *s = p + o;
				const uint8_t *z = memchr(s, 0, n - o);
				if (z == NULL) {
					record_error(E_PROTOCOL, c, "OPTNEG macro list for stage %u not NUL-terminated", id);
					return -1;
				}
				o += (uint32_t)(z - s) + 1;
				if (id < 7 && z > s) { /* an empty list: Postfix keeps its own */
					free(c->symlist[id]);
					c->symlist[id] = strndup((const char *)s, (size_t)(z - s));
				}
			}
		}
	}
	if (!R.have_neg) {
		R.have_neg = 1;
		R.neg_version = c->version;
		R.neg_actions = c->actions;
		R.neg_protocol = c->protocol;
		for (int i = 0; i < 7; i++)
			R.neg_symlist[i] = c->symlist[i] != NULL ? strdup(c->symlist[i]) : NULL;
	} else if (R.neg_version != c->version || R.neg_actions != c->actions ||
		   R.neg_protocol != c->protocol) {
		R.neg_mismatch++;
	}
	R.t_optneg++;
	return 0;
}

/* One packet from the milter. Returns -1 if the connection was closed. */
static int handle_packet(struct conn *c, uint8_t code, const uint8_t *p, uint32_t n, uint64_t t)
{
	int st = c->awaiting;
	if (st < 0) {
		record_error(E_PROTOCOL, c, "reply '%c' (%u payload bytes) while no reply was owed", code, n);
		conn_close(c);
		return -1;
	}
	if (st == ST_OPTNEG) {
		if (handle_optneg(c, code, p, n) < 0) {
			conn_close(c);
			return -1;
		}
		if (in_window(t))
			sample_add(&R.lat[ST_OPTNEG], t - c->await_t);
		c->awaiting = -1;
		c->stage = ST_CONNECT;
		advance(c);
		return c->phase == P_IDLE ? -1 : 0;
	}
	if (code == 'p') { /* progress: the reply is still coming */
		if (n == 0)
			return 0;
		record_error(E_PROTOCOL, c, "'p' with a payload");
		conn_close(c);
		return -1;
	}
	if (empty_reply_code(code) && n != 0) {
		record_error(E_PROTOCOL, c, "reply '%c' carries %u payload bytes (Postfix: protocol error)", code, n);
		conn_close(c);
		return -1;
	}
	uint32_t act = mod_action(code);
	if (act != 0) {
		if (st != ST_EOM) {
			record_error(E_PROTOCOL, c, "modification '%c' before end of message", code);
			conn_close(c);
			return -1;
		}
		if ((c->actions & act) == 0)
			record_warning(&R.warnings_mod_without_action,
				       "modification '%c' without its action flag (negotiated actions 0x%x)", code,
				       c->actions);
		if (in_window(t))
			R.mods[code]++;
		if (R.mod_sample[code][0] == '\0')
			render(R.mod_sample[code], sizeof R.mod_sample[code], p, n);
		return 0;
	}
	if (code == 'y') {
		if (n < 4 || p[n - 1] != '\0' || memchr(p, 0, n - 1) != NULL || (p[0] != '4' && p[0] != '5') ||
		    p[1] < '0' || p[1] > '9' || p[2] < '0' || p[2] > '9') {
			char txt[200];
			render(txt, sizeof txt, p, n);
			record_error(E_PROTOCOL, c, "malformed REPLYCODE \"%s\"", txt);
			conn_close(c);
			return -1;
		}
	} else if (!(code == 'c' || code == 'a' || code == 'r' || code == 't' || code == 'd' ||
		     (code == 's' && st == ST_BODY))) {
		char txt[200];
		render(txt, sizeof txt, p, n);
		record_error(E_PROTOCOL, c, "reply '%c' is not valid here (payload \"%s\")", code, txt);
		conn_close(c);
		return -1;
	}

	/* a final reply for stage st */
	if (in_window(t)) {
		sample_add(&R.lat[st], t - c->await_t);
		R.replies[st][code]++;
	}
	if (R.reply_sample[st][code][0] == '\0') /* y text without its terminating NUL */
		render(R.reply_sample[st][code], sizeof R.reply_sample[st][code], p, code == 'y' ? n - 1 : n);
	c->awaiting = -1;
	int tempfail = code == 't' || (code == 'y' && p[0] == '4');
	if (tempfail && tl_at(t) != NULL)
		tl_at(t)->tempfail++;
	if (tempfail)
		record_error(E_UNEXPECTED, c, "tempfail '%c' %.*s", code, (int)(code == 'y' ? n - 1 : 0), (const char *)p);

	switch (st) {
	case ST_CONNECT:
	case ST_HELO:
		if (code == 'c')
			break;
		if (code == 'd') {
			record_error(E_UNEXPECTED, c, "DISCARD at %s (Postfix ignores it)", stage_name[st]);
			break;
		}
		/* session-level verdict: Postfix stops using the milter for this session, no QUIT */
		if (!tempfail && code != 'a')
			record_error(E_UNEXPECTED, c, "session-level '%c' at %s", code, stage_name[st]);
		finish_message(c, st, code, t);
		conn_close(c);
		return -1;
	case ST_RCPT:
		c->rcpt_i++;
		if (code == 'c') {
			c->rcpt_ok++;
		} else if (code == 'a' || code == 'd') {
			finish_message(c, st, code, t);
		} /* r, t, y: this recipient only; carry on */
		break;
	case ST_BODY:
		if (code == 's') {
			c->stage = ST_EOM;
			break;
		}
		/* fallthrough */
	case ST_MAIL:
	case ST_DATA:
	case ST_HEADER:
	case ST_EOH:
		if (code != 'c') {
			if (!tempfail && code != 'a')
				record_error(E_UNEXPECTED, c, "message-level '%c' at %s", code, stage_name[st]);
			finish_message(c, st, code, t);
		}
		break;
	case ST_EOM:
		/* 'd' is a final verdict too: a policy that DISCARDs a recipient drops the message here */
		if (code != 'c' && code != 'a' && code != 'd' && !tempfail)
			record_error(E_UNEXPECTED, c, "'%c' at end of message", code);
		finish_message(c, st, code, t);
		break;
	default:
		break;
	}
	advance(c);
	return c->phase == P_IDLE ? -1 : 0;
}

static void on_readable(struct conn *c)
{
	for (;;) {
		buf_reserve(&c->in, 65536);
		ssize_t r = recv(c->fd, c->in.p + c->in.len, c->in.cap - c->in.len, 0);
		if (r < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			if (errno == EINTR)
				continue;
			record_error(E_LOST, c, "read: %s", strerror(errno));
			conn_close(c);
			return;
		}
		if (r == 0) {
			if (c->awaiting >= 0 || c->phase != P_CLOSING)
				record_error(E_LOST, c, "milter closed the connection");
			conn_close(c);
			return;
		}
		c->in.len += (size_t)r;
		if (c->in.len < c->in.cap)
			break; /* short read: the socket is drained */
	}
	uint64_t t = now_ns();
	trace_packets(c, "<", c->in.p, c->in.len);
	size_t o = 0;
	while (c->in.len - o >= 4) {
		uint32_t len = get_u32(c->in.p + o);
		if (len < 1 || len > MAX_REPLY_LEN) {
			record_error(E_PROTOCOL, c, "reply packet length %u", len);
			conn_close(c);
			return;
		}
		if (c->in.len - o < 4 + (size_t)len)
			break;
		uint8_t code = c->in.p[o + 4];
		const uint8_t *payload = c->in.p + o + 5;
		o += 4 + (size_t)len;
		/* in.off marks what is consumed, so that flush_out can tell stray bytes when closing;
		 * handle_packet may write, close and free the buffer (then it returns -1) */
		c->in.off = o;
		if (handle_packet(c, code, payload, len - 1, t) < 0)
			return;
	}
	if (o > 0) {
		memmove(c->in.p, c->in.p + o, c->in.len - o);
		c->in.len -= o;
	}
	c->in.off = 0;
}

/* ---- connection lifecycle ---- */

static void fill_client(struct conn *c)
{
	uint32_t usable = R.t_connections % opt.pool_size;
	uint32_t ip = opt.pool_base + usable;
	snprintf(c->ip, sizeof c->ip, "%u.%u.%u.%u", ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255, ip & 255);
	c->port = (uint16_t)(1024 + R.t_connections % 64000);
}

static void conn_start(int slot)
{
	struct conn *c = &conns[slot];
	memset(c, 0, sizeof *c);
	c->slot = slot;
	c->awaiting = -1;
	c->serial = ++conn_serial;
	c->conn_t = c->msg_t = now_ns();
	fill_client(c);
	new_message(c);
	R.t_connections++;
	if (in_window(c->conn_t))
		R.connections++;
	c->fd = socket(opt.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		record_error(E_CONNECT, c, "socket: %s", strerror(errno));
		backoff_until[slot] = now_ns() + 10000000ull;
		c->phase = P_IDLE;
		return;
	}
	if (opt.family != AF_UNIX) {
		int one = 1;
		setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	}
	active++;
	c->phase = P_CONNECTING;
	struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
	if (connect(c->fd, (struct sockaddr *)&opt.addr, opt.addrlen) == 0) {
		epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev);
		c->epollout = 1;
		return; /* handled on the first EPOLLOUT like an asynchronous connect */
	}
	if (errno != EINPROGRESS) {
		record_error(E_CONNECT, c, "connect %s: %s", opt.target, strerror(errno));
		close(c->fd);
		c->fd = -1;
		active--;
		c->phase = P_IDLE;
		backoff_until[slot] = now_ns() + 10000000ull;
		return;
	}
	epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev);
	c->epollout = 1;
}

static void conn_close(struct conn *c)
{
	if (c->phase == P_IDLE)
		return;
	if (c->fd >= 0) {
		/* close() also removes it from the epoll set (no dup of the fd exists) */
		close(c->fd);
		c->fd = -1;
	}
	for (int i = 0; i < 7; i++) {
		free(c->symlist[i]);
		c->symlist[i] = NULL;
	}
	free(c->in.p);
	free(c->out.p);
	c->in = (struct buf){0};
	c->out = (struct buf){0};
	c->phase = P_IDLE;
	active--;
}

static void on_connected(struct conn *c)
{
	int err = 0;
	socklen_t el = sizeof err;
	getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
	if (err != 0) {
		record_error(E_CONNECT, c, "connect %s: %s", opt.target, strerror(err));
		backoff_until[c->slot] = now_ns() + 10000000ull;
		conn_close(c);
		return;
	}
	c->phase = P_SESSION;
	size_t at = pkt_begin(&c->out, 'O');
	buf_u32(&c->out, OFFER_VERSION);
	buf_u32(&c->out, OFFER_ACTIONS);
	buf_u32(&c->out, OFFER_PROTOCOL);
	pkt_end(&c->out, at);
	c->awaiting = ST_OPTNEG;
	c->await_t = now_ns();
	trace_packets(c, ">", c->out.p, c->out.len);
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
	epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
	c->epollout = 0;
	flush_out(c);
}

static void check_timeouts(uint64_t t)
{
	uint64_t limit = (uint64_t)(opt.timeout * 1e9);
	for (int i = 0; i < opt.concurrency; i++) {
		struct conn *c = &conns[i];
		if (c->phase == P_IDLE)
			continue;
		uint64_t since = c->phase == P_CONNECTING ? c->conn_t : c->await_t;
		/* since can be later than t: the slot may have been (re)started after t was read */
		if (c->phase == P_CLOSING && c->awaiting < 0) {
			if (since < t && t - since > 2000000000ull) {
				record_warning(&R.warnings_no_close_after_quit,
					       "conn %llu: the milter did not close within 2 s of QUIT",
					       (unsigned long long)c->serial);
				conn_close(c);
				opt.verify_close = 0; /* don't let this stall the run again */
			}
			continue;
		}
		if ((c->phase == P_CONNECTING || c->awaiting >= 0) && since < t && t - since > limit) {
			record_error(E_TIMEOUT, c, "no reply within %.0f s", opt.timeout);
			conn_close(c);
		}
	}
}

/* ---- output ---- */

/* Nearest-rank percentile of sorted samples, in microseconds. */
static double pct(const struct samples *s, double p)
{
	size_t rank = (size_t)(p * (double)s->n + 0.999999);
	if (rank < 1)
		rank = 1;
	if (rank > s->n)
		rank = s->n;
	return (double)s->v[rank - 1] / 1000.0;
}

static void print_latency(const char *name, struct samples *s, int comma)
{
	printf("    \"%s\": ", name);
	if (s->n == 0) {
		printf("null%s\n", comma ? "," : "");
		return;
	}
	qsort(s->v, s->n, sizeof *s->v, cmp_u64);
	double sum = 0;
	for (size_t i = 0; i < s->n; i++)
		sum += (double)s->v[i];
	printf("{\"count\": %zu, \"p50\": %.1f, \"p90\": %.1f, \"p99\": %.1f, \"p999\": %.1f, \"max\": %.1f, "
	       "\"mean\": %.1f}%s\n",
	       s->n, pct(s, 0.50), pct(s, 0.90), pct(s, 0.99), pct(s, 0.999), pct(s, 1.0),
	       sum / (double)s->n / 1000.0, comma ? "," : "");
}

static void print_json_string(const char *s)
{
	putchar('"');
	for (; *s != '\0'; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			printf("\\%c", ch);
		else if (ch < 0x20)
			printf("\\u%04x", ch);
		else
			putchar(ch);
	}
	putchar('"');
}

/* Prints {"c": n, ...} for the non-zero entries of a per-code counter array. */
static void print_code_counts(const uint64_t *counts)
{
	int first = 1;
	putchar('{');
	for (int k = 0; k < 128; k++) {
		if (counts[k] == 0)
			continue;
		printf("%s\"%c\": %llu", first ? "" : ", ", k == '"' || k == '\\' ? '?' : k,
		       (unsigned long long)counts[k]);
		first = 0;
	}
	putchar('}');
}

static void print_results(double cpu_pct, double user_s, double sys_s, double window_s)
{
	printf("{\n  \"tool\": \"loadgen\",\n  \"target\": ");
	print_json_string(opt.target);
	printf(",\n  \"concurrency\": %d,\n  \"duration_s\": %g,\n  \"warmup_s\": %g,\n", opt.concurrency,
	       opt.duration, opt.warmup);
	printf("  \"messages_per_connection\": %d,\n  \"clients\": ", opt.per_conn);
	print_json_string(opt.clients);
	printf(",\n  \"recipients\": [");
	for (int i = 0; i < opt.nrcpt; i++) {
		printf("%s", i > 0 ? ", " : "");
		print_json_string(opt.rcpt[i]);
	}
	printf("],\n  \"body_bytes\": %zu,\n  \"headers\": %d,\n  \"mime\": %s,\n", opt.body_bytes, opt.headers,
	       opt.mime ? "true" : "false");
	if (R.have_neg) {
		printf("  \"negotiated\": {\"version\": %u, \"actions\": \"0x%x\", \"protocol\": \"0x%x\", "
		       "\"connections_differing\": %llu, \"macro_lists\": {",
		       R.neg_version, R.neg_actions, R.neg_protocol, (unsigned long long)R.neg_mismatch);
		int first = 1;
		for (int i = 0; i < 7; i++) {
			if (R.neg_symlist[i] == NULL)
				continue;
			printf("%s\"%s\": ", first ? "" : ", ", symlist_name[i]);
			print_json_string(R.neg_symlist[i]);
			first = 0;
		}
		printf("}},\n");
	} else {
		printf("  \"negotiated\": null,\n");
	}
	printf("  \"window_s\": %.3f,\n  \"messages\": %llu,\n  \"messages_per_sec\": %.1f,\n", window_s,
	       (unsigned long long)R.messages, opt.duration > 0 ? (double)R.messages / opt.duration : 0.0);
	printf("  \"connections\": %llu,\n  \"latency_us\": {\n", (unsigned long long)R.connections);
	print_latency("message", &R.message, 1);
	for (int s = 0; s < ST__COUNT; s++)
		print_latency(stage_name[s], &R.lat[s], s + 1 < ST__COUNT);
	printf("  },\n  \"replies\": {");
	int first = 1;
	for (int s = 0; s < ST__COUNT; s++) {
		int any = 0;
		for (int k = 0; k < 128; k++)
			any |= R.replies[s][k] != 0;
		if (!any)
			continue;
		printf("%s\"%s\": ", first ? "" : ", ", stage_name[s]);
		print_code_counts(R.replies[s]);
		first = 0;
	}
	printf("},\n  \"reply_samples\": {");
	first = 1;
	for (int s = 0; s < ST__COUNT; s++)
		for (int k = 0; k < 128; k++) {
			if (R.reply_sample[s][k][0] == '\0')
				continue;
			printf("%s\"%s:%c\": ", first ? "" : ", ", stage_name[s], k);
			print_json_string(R.reply_sample[s][k]);
			first = 0;
		}
	printf("},\n  \"modifications\": ");
	print_code_counts(R.mods);
	printf(",\n  \"modification_samples\": {");
	first = 1;
	for (int k = 0; k < 128; k++) {
		if (R.mod_sample[k][0] == '\0')
			continue;
		printf("%s\"%c\": ", first ? "" : ", ", k);
		print_json_string(R.mod_sample[k]);
		first = 0;
	}
	printf("},\n  \"dispositions\": {");
	first = 1;
	for (int s = 0; s < ST__COUNT; s++)
		for (int k = 0; k < 128; k++) {
			if (R.dispositions[s][k] == 0)
				continue;
			printf("%s\"%s:%c\": %llu", first ? "" : ", ", stage_name[s], k,
			       (unsigned long long)R.dispositions[s][k]);
			first = 0;
		}
	uint64_t total = 0;
	for (int e = 0; e < E__COUNT; e++)
		total += R.errors[e];
	printf("},\n  \"errors\": {");
	for (int e = 0; e < E__COUNT; e++)
		printf("\"%s\": %llu, ", err_name[e], (unsigned long long)R.errors[e]);
	printf("\"total\": %llu, \"first\": ", (unsigned long long)total);
	if (R.first_error[0] != '\0')
		print_json_string(R.first_error);
	else
		printf("null");
	printf("},\n  \"warnings\": {\"modification_without_action\": %llu, \"protocol_bits_outside_offer\": %llu, "
	       "\"macro_list_without_setsymlist\": %llu, \"no_close_after_quit\": %llu, \"first\": ",
	       (unsigned long long)R.warnings_mod_without_action,
	       (unsigned long long)R.warnings_proto_outside_offer, (unsigned long long)R.warnings_symlist_ignored,
	       (unsigned long long)R.warnings_no_close_after_quit);
	if (R.first_warning[0] != '\0')
		print_json_string(R.first_warning);
	else
		printf("null");
	printf("},\n  \"totals\": {\"connections\": %llu, \"negotiated\": %llu, \"messages\": %llu, "
	       "\"unfinished_at_end\": %llu, \"sent\": {",
	       (unsigned long long)R.t_connections, (unsigned long long)R.t_optneg,
	       (unsigned long long)R.t_messages, (unsigned long long)R.unfinished);
	for (int s = 1; s < ST__COUNT; s++)
		printf("%s\"%s\": %llu", s > 1 ? ", " : "", stage_name[s], (unsigned long long)R.t_sent[s]);
	printf("}},\n  \"loadgen_cpu_pct\": %.1f,\n  \"loadgen_cpu_s\": {\"user\": %.3f, \"sys\": %.3f}", cpu_pct,
	       user_s, sys_s);
	if (opt.timeline_ms > 0) {
		size_t last = 0;
		for (size_t i = 0; i < tl_n; i++)
			if (tl[i].message.n > 0 || tl[i].errors > 0 || tl[i].tempfail > 0)
				last = i + 1;
		printf(",\n  \"timeline\": {\"t0_epoch_ms\": %.3f, \"bucket_ms\": %g, \"warmup_end_ms\": %.3f, "
		       "\"buckets\": [",
		       t0_epoch_ms, opt.timeline_ms, (double)(warm_end - t0) / 1e6);
		for (size_t i = 0; i < last; i++) {
			struct samples *m = &tl[i].message;
			printf("%s\n    {\"messages\": %zu, ", i > 0 ? "," : "", m->n);
			if (m->n > 0) {
				qsort(m->v, m->n, sizeof *m->v, cmp_u64);
				printf("\"p50_us\": %.1f, \"p99_us\": %.1f, \"max_us\": %.1f, ", pct(m, 0.50), pct(m, 0.99),
				       pct(m, 1.0));
			} else {
				printf("\"p50_us\": null, \"p99_us\": null, \"max_us\": null, ");
			}
			printf("\"tempfail\": %llu, \"errors\": %llu}", (unsigned long long)tl[i].tempfail,
			       (unsigned long long)tl[i].errors);
		}
		printf("\n  ]}");
	}
	printf("\n}\n");
}

/* ---- options parsing ---- */

static void parse_target(const char *t)
{
	opt.target = t;
	const char *colon = strchr(t, ':');
	if (colon == NULL)
		die("--target %s: expected inet:PORT@HOST, inet6:PORT@HOST or unix:/path", t);
	size_t sl = (size_t)(colon - t);
	const char *rest = colon + 1;
	if ((sl == 4 && strncmp(t, "unix", 4) == 0) || (sl == 5 && strncmp(t, "local", 5) == 0)) {
		struct sockaddr_un *un = (struct sockaddr_un *)&opt.addr;
		if (strlen(rest) == 0 || strlen(rest) >= sizeof un->sun_path)
			die("--target %s: bad socket path", t);
		un->sun_family = AF_UNIX;
		strcpy(un->sun_path, rest);
		opt.family = AF_UNIX;
		opt.addrlen = sizeof *un;
		return;
	}
	int fam;
	if (sl == 4 && strncmp(t, "inet", 4) == 0)
		fam = AF_INET;
	else if (sl == 5 && strncmp(t, "inet6", 5) == 0)
		fam = AF_INET6;
	else
		die("--target %s: unknown socket type", t);
	const char *at = strchr(rest, '@');
	if (at == NULL)
		die("--target %s: expected PORT@HOST", t);
	char port[16], host[256];
	snprintf(port, sizeof port, "%.*s", (int)(at - rest), rest);
	snprintf(host, sizeof host, "%s", at + 1);
	struct addrinfo hints = {.ai_family = fam, .ai_socktype = SOCK_STREAM}, *res;
	int rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0)
		die("--target %s: %s", t, gai_strerror(rc));
	memcpy(&opt.addr, res->ai_addr, res->ai_addrlen);
	opt.addrlen = res->ai_addrlen;
	opt.family = fam;
	freeaddrinfo(res);
}

static void parse_cidr(const char *s)
{
	unsigned a, b, c, d, len = 32;
	int n = sscanf(s, "%u.%u.%u.%u/%u", &a, &b, &c, &d, &len);
	if (n < 4 || a > 255 || b > 255 || c > 255 || d > 255 || len > 32 || len < 8)
		die("--clients %s: expected an IPv4 CIDR like 192.0.2.0/24 (prefix 8..32)", s);
	uint32_t ip = (a << 24) | (b << 16) | (c << 8) | d;
	uint32_t mask = len == 32 ? 0xffffffffu : ~((1u << (32 - len)) - 1);
	uint32_t base = ip & mask, size = len == 32 ? 1 : (1u << (32 - len));
	if (len <= 30) { /* skip the network and broadcast addresses */
		base += 1;
		size -= 2;
	}
	opt.pool_base = base;
	opt.pool_size = size;
}

static double parse_seconds(const char *name, const char *v, double min)
{
	char *end;
	double d = strtod(v, &end);
	if (*end != '\0' || d < min)
		die("--%s %s: expected a number of seconds >= %g", name, v, min);
	return d;
}

static long parse_int(const char *name, const char *v, long min, long max)
{
	char *end;
	long n = strtol(v, &end, 10);
	if (*end != '\0' || n < min || n > max)
		die("--%s %s: expected an integer in %ld..%ld", name, v, min, max);
	return n;
}

static void usage(void)
{
	fputs("usage: loadgen --target inet:PORT@HOST|unix:/path [--concurrency N] [--duration SEC]\n"
	      "               [--warmup SEC] [--messages-per-connection K] [--clients CIDR]\n"
	      "               [--rcpt ADDR]... [--body-bytes N] [--headers N] [--mime]\n"
	      "               [--timeout SEC] [--drain SEC] [--trace N] [--verify-close N]\n"
	      "               [--timeline MS]\n",
	      stderr);
	exit(64);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {{"target", required_argument, 0, 't'},
						 {"concurrency", required_argument, 0, 'c'},
						 {"duration", required_argument, 0, 'd'},
						 {"warmup", required_argument, 0, 'w'},
						 {"messages-per-connection", required_argument, 0, 'k'},
						 {"clients", required_argument, 0, 'C'},
						 {"rcpt", required_argument, 0, 'r'},
						 {"body-bytes", required_argument, 0, 'b'},
						 {"headers", required_argument, 0, 'H'},
						 {"mime", no_argument, 0, 'M'},
						 {"timeout", required_argument, 0, 'T'},
						 {"drain", required_argument, 0, 'D'},
						 {"trace", required_argument, 0, 'x'},
						 {"verify-close", required_argument, 0, 'V'},
						 {"timeline", required_argument, 0, 'L'},
						 {"help", no_argument, 0, 'h'},
						 {0, 0, 0, 0}};
	int ch;
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 't':
			parse_target(optarg);
			break;
		case 'c':
			opt.concurrency = (int)parse_int("concurrency", optarg, 1, 10000);
			break;
		case 'd':
			opt.duration = parse_seconds("duration", optarg, 0.1);
			break;
		case 'w':
			opt.warmup = parse_seconds("warmup", optarg, 0);
			break;
		case 'k':
			opt.per_conn = (int)parse_int("messages-per-connection", optarg, 1, 1000000);
			break;
		case 'C':
			opt.clients = optarg;
			break;
		case 'r':
			if (opt.nrcpt == 64)
				die("--rcpt: at most 64 recipients");
			if (strlen(optarg) == 0 || strlen(optarg) > 200)
				die("--rcpt: 1..200 characters");
			opt.rcpt[opt.nrcpt++] = optarg;
			break;
		case 'b':
			opt.body_bytes = (size_t)parse_int("body-bytes", optarg, 0, 1L << 30);
			break;
		case 'H':
			opt.headers = (int)parse_int("headers", optarg, 0, 10000);
			opt.headers_given = 1;
			break;
		case 'M':
			opt.mime = 1;
			break;
		case 'T':
			opt.timeout = parse_seconds("timeout", optarg, 0.01);
			break;
		case 'D':
			opt.drain = parse_seconds("drain", optarg, 0);
			break;
		case 'x':
			opt.trace = (int)parse_int("trace", optarg, 0, 1000000);
			break;
		case 'V':
			opt.verify_close = (int)parse_int("verify-close", optarg, 0, 1000000000);
			break;
		case 'L':
			opt.timeline_ms = (double)parse_int("timeline", optarg, 10, 60000);
			break;
		default:
			usage();
		}
	}
	if (opt.target == NULL || optind != argc)
		usage();
	parse_cidr(opt.clients);
	if (opt.nrcpt == 0) {
		opt.rcpt[opt.nrcpt++] = "<user@example.test>";
		opt.rcpt[opt.nrcpt++] = "<someone@elsewhere.example>";
	}

	if (opt.mime && !opt.headers_given)
		opt.headers = 8;
	if (opt.mime && opt.headers < 8)
		die("--mime needs --headers of at least 8 (From .. Message-ID, MIME-Version, Content-Type, X-Mailer)");
	build_body();
	/* SIZE=: header lines + blank line + body, as the client would announce */
	message_size = opt.body_bytes + 2;
	{
		struct conn tmp = {0};
		snprintf(tmp.qid, sizeof tmp.qid, "4X0000000000");
		for (int i = 0; i < opt.headers; i++) {
			char n[64], v[256];
			header_at(&tmp, i, n, sizeof n, v, sizeof v);
			message_size += strlen(n) + 2 + strlen(v) + 2;
		}
	}

	signal(SIGPIPE, SIG_IGN);
	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (epfd < 0)
		die("epoll_create1: %s", strerror(errno));
	conns = calloc((size_t)opt.concurrency, sizeof *conns);
	backoff_until = calloc((size_t)opt.concurrency, sizeof *backoff_until);
	if (conns == NULL || backoff_until == NULL)
		die("out of memory");

	t0 = now_ns();
	{
		struct timespec rt;
		clock_gettime(CLOCK_REALTIME, &rt);
		t0_epoch_ms = (double)rt.tv_sec * 1e3 + (double)rt.tv_nsec / 1e6;
	}
	warm_end = t0 + (uint64_t)(opt.warmup * 1e9);
	t_end = warm_end + (uint64_t)(opt.duration * 1e9);
	uint64_t drain_end = t_end + (uint64_t)(opt.drain * 1e9);
	struct rusage ru0 = {0}, ru1 = {0};
	uint64_t meas0 = 0, meas1 = 0;
	int measuring = 0;
	uint64_t last_timeout_check = t0;
	struct epoll_event evs[512];

	for (;;) {
		uint64_t t = now_ns();
		if (!measuring && meas0 == 0 && t >= warm_end) {
			measuring = 1;
			meas0 = t;
			getrusage(RUSAGE_SELF, &ru0);
		}
		if (!stopping && t >= t_end) {
			stopping = 1;
			if (meas0 == 0) {
				meas0 = t;
				getrusage(RUSAGE_SELF, &ru0);
			}
			measuring = 0;
			meas1 = t;
			getrusage(RUSAGE_SELF, &ru1);
		}
		if (stopping && (active == 0 || t >= drain_end))
			break;
		if (!stopping)
			for (int i = 0; i < opt.concurrency; i++)
				if (conns[i].phase == P_IDLE && backoff_until[i] <= t)
					conn_start(i);
		if (t - last_timeout_check > 100000000ull) {
			check_timeouts(t);
			last_timeout_check = t;
		}
		uint64_t next = stopping ? drain_end : (t < warm_end ? warm_end : t_end);
		int wait_ms = next > t ? (int)((next - t) / 1000000ull) + 1 : 0;
		if (wait_ms > 100)
			wait_ms = 100;
		int n = epoll_wait(epfd, evs, 512, wait_ms);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("epoll_wait: %s", strerror(errno));
		}
		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;
			if (c->phase == P_IDLE)
				continue;
			if (c->phase == P_CONNECTING) {
				on_connected(c);
				continue;
			}
			if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
				on_readable(c);
			if (c->phase != P_IDLE && (evs[i].events & EPOLLOUT))
				flush_out(c);
		}
	}
	for (int i = 0; i < opt.concurrency; i++)
		if (conns[i].phase != P_IDLE) {
			R.unfinished++;
			conn_close(&conns[i]);
		}

	double user_s = (double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec) +
			(double)(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec) / 1e6;
	double sys_s = (double)(ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) +
		       (double)(ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec) / 1e6;
	double window_s = (double)(meas1 - meas0) / 1e9;
	double cpu_pct = window_s > 0 ? 100.0 * (user_s + sys_s) / window_s : 0;
	print_results(cpu_pct, user_s, sys_s, window_s);

	uint64_t other = R.errors[E_UNEXPECTED] + R.errors[E_CONNECT] + R.errors[E_LOST] + R.errors[E_TIMEOUT];
	if (R.errors[E_PROTOCOL] > 0)
		return 2;
	return other > 0 ? 3 : 0;
}
