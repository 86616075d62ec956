/*
 * null-milter.c: the reference milter of the benchmark, built with Debian's libmilter
 * (sendmail's own filter library), implementing the null policy: continue everything.
 * Called by bench/run.ts (built into bench/c/build/null-milter, one process per measurement)
 * and by hand when validating bench/c/loadgen.c:
 *
 *   null-milter -p inet:PORT@127.0.0.1 | -p unix:/path   [-f] [-b BACKLOG] [-d DEBUGLEVEL]
 *
 * Lean mode (default) registers connect, helo, envfrom, envrcpt and eom and, in xxfi_negotiate,
 * asks for the same protocol bits as milter-policy's relay guard (milter/negotiate.ts):
 * NODATA|NOHDRS|NOEOH|NOBODY|NOUNKNOWN, NR_CONN|NR_HELO|NR_MAIL, and the NR bits of the
 * suppressed stages (NR_DATA|NR_HDR|NR_EOH|NR_BODY|NR_UNKN), intersected with the offer, so both
 * see identical wire traffic. Stages negotiated NR return SMFIS_NOREPLY (returning CONTINUE there
 * makes libmilter log "milter claimed not to reply" on every message).
 * Full mode (-f) registers every callback (header, eoh, body, data, unknown too) and asks for no
 * NO/NR bits: every command is sent and answered.
 * Both request no actions (a null milter modifies nothing).
 *
 * It prints {"event":"started",...} on stdout once the socket listens (bench/run.ts waits for
 * that line, as it does for the daemon) and, when libmilter's signal thread stops the main loop
 * (SIGTERM/SIGINT/SIGHUP), one JSON line of callback counters on stdout, which run.ts compares
 * with what the load generator sent.
 * Failure: bad arguments -> exit 64; libmilter refuses the socket or registration -> message on
 * stderr, exit 69 (EX_UNAVAILABLE); smfi_main failing -> exit 70. Per-connection problems are
 * libmilter's (logged through syslog, the session is dropped).
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libmilter/mfapi.h>

/* Protocol bits requested in lean mode; see the header comment. */
#define LEAN_PROTOCOL                                                                              \
	(SMFIP_NODATA | SMFIP_NOHDRS | SMFIP_NOEOH | SMFIP_NOBODY | SMFIP_NOUNKNOWN | SMFIP_NR_CONN |    \
	 SMFIP_NR_HELO | SMFIP_NR_MAIL | SMFIP_NR_DATA | SMFIP_NR_HDR | SMFIP_NR_EOH | SMFIP_NR_BODY |   \
	 SMFIP_NR_UNKN)

/* Set in the per-connection private pointer so that a negotiated protocol of 0 is still non-NULL. */
#define PRIV_MARK 0x80000000UL

static int full_mode;

/* Callback counters, updated from libmilter's per-connection threads. */
static unsigned long n_negotiate, n_connect, n_helo, n_envfrom, n_envrcpt, n_data, n_header, n_eoh,
    n_body, n_body_bytes, n_eom, n_abort, n_close, n_unknown;

#define COUNT(c) __atomic_fetch_add(&(c), 1, __ATOMIC_RELAXED)

/* The protocol bits negotiated on this connection (lean mode only). */
static unsigned long negotiated(SMFICTX *ctx)
{
	return (unsigned long)(uintptr_t)smfi_getpriv(ctx) & ~PRIV_MARK;
}

/* CONTINUE, or NOREPLY where the stage's NR bit was negotiated. */
static sfsistat go_on(SMFICTX *ctx, unsigned long nr_bit)
{
	return (negotiated(ctx) & nr_bit) != 0 ? SMFIS_NOREPLY : SMFIS_CONTINUE;
}

static sfsistat nm_negotiate(SMFICTX *ctx, unsigned long f0, unsigned long f1, unsigned long f2,
			     unsigned long f3, unsigned long *pf0, unsigned long *pf1,
			     unsigned long *pf2, unsigned long *pf3)
{
	(void)f0;
	(void)f2;
	(void)f3;
	COUNT(n_negotiate);
	*pf0 = 0; /* actions: none */
	*pf1 = full_mode ? 0 : (LEAN_PROTOCOL & f1);
	*pf2 = 0;
	*pf3 = 0;
	if (!full_mode)
		smfi_setpriv(ctx, (void *)(uintptr_t)(*pf1 | PRIV_MARK));
	return SMFIS_CONTINUE;
}

static sfsistat nm_connect(SMFICTX *ctx, char *host, _SOCK_ADDR *addr)
{
	(void)host;
	(void)addr;
	COUNT(n_connect);
	return go_on(ctx, SMFIP_NR_CONN);
}

static sfsistat nm_helo(SMFICTX *ctx, char *helo)
{
	(void)helo;
	COUNT(n_helo);
	return go_on(ctx, SMFIP_NR_HELO);
}

static sfsistat nm_envfrom(SMFICTX *ctx, char **argv)
{
	(void)argv;
	COUNT(n_envfrom);
	return go_on(ctx, SMFIP_NR_MAIL);
}

static sfsistat nm_envrcpt(SMFICTX *ctx, char **argv)
{
	(void)argv;
	COUNT(n_envrcpt);
	return go_on(ctx, SMFIP_NR_RCPT);
}

static sfsistat nm_data(SMFICTX *ctx)
{
	COUNT(n_data);
	return go_on(ctx, SMFIP_NR_DATA);
}

static sfsistat nm_header(SMFICTX *ctx, char *name, char *value)
{
	(void)name;
	(void)value;
	COUNT(n_header);
	return go_on(ctx, SMFIP_NR_HDR);
}

static sfsistat nm_eoh(SMFICTX *ctx)
{
	COUNT(n_eoh);
	return go_on(ctx, SMFIP_NR_EOH);
}

static sfsistat nm_body(SMFICTX *ctx, unsigned char *chunk, size_t len)
{
	(void)chunk;
	COUNT(n_body);
	__atomic_fetch_add(&n_body_bytes, len, __ATOMIC_RELAXED);
	return go_on(ctx, SMFIP_NR_BODY);
}

static sfsistat nm_unknown(SMFICTX *ctx, const char *line)
{
	(void)line;
	COUNT(n_unknown);
	return go_on(ctx, SMFIP_NR_UNKN);
}

static sfsistat nm_eom(SMFICTX *ctx)
{
	(void)ctx;
	COUNT(n_eom);
	return SMFIS_CONTINUE;
}

static sfsistat nm_abort(SMFICTX *ctx)
{
	(void)ctx;
	COUNT(n_abort);
	return SMFIS_CONTINUE;
}

/* Clears the private pointer: libmilter warns "private data not NULL" otherwise. */
static sfsistat nm_close(SMFICTX *ctx)
{
	COUNT(n_close);
	smfi_setpriv(ctx, NULL);
	return SMFIS_CONTINUE;
}

static void usage(const char *argv0)
{
	fprintf(stderr,
		"usage: %s -p inet:PORT@HOST|unix:/path [-f] [-b BACKLOG] [-d DEBUGLEVEL]\n"
		"  -f  full null milter: every callback, no NO/NR protocol bits\n",
		argv0);
	exit(64);
}

int main(int argc, char **argv)
{
	char *spec = NULL;
	int backlog = 1024;
	int debug = 0;
	int opt;

	while ((opt = getopt(argc, argv, "p:fb:d:")) != -1) {
		switch (opt) {
		case 'p':
			spec = optarg;
			break;
		case 'f':
			full_mode = 1;
			break;
		case 'b':
			backlog = atoi(optarg);
			break;
		case 'd':
			debug = atoi(optarg);
			break;
		default:
			usage(argv[0]);
		}
	}
	if (spec == NULL || optind != argc || backlog <= 0)
		usage(argv[0]);

	struct smfiDesc desc;
	memset(&desc, 0, sizeof desc);
	desc.xxfi_name = full_mode ? "null-milter-full" : "null-milter-lean";
	desc.xxfi_version = SMFI_VERSION;
	desc.xxfi_flags = 0;
	desc.xxfi_connect = nm_connect;
	desc.xxfi_helo = nm_helo;
	desc.xxfi_envfrom = nm_envfrom;
	desc.xxfi_envrcpt = nm_envrcpt;
	desc.xxfi_eom = nm_eom;
	desc.xxfi_abort = nm_abort;
	desc.xxfi_close = nm_close;
	desc.xxfi_negotiate = nm_negotiate;
	if (full_mode) {
		desc.xxfi_header = nm_header;
		desc.xxfi_eoh = nm_eoh;
		desc.xxfi_body = nm_body;
		desc.xxfi_data = nm_data;
		desc.xxfi_unknown = nm_unknown;
	}

	if (smfi_setconn(spec) == MI_FAILURE) {
		fprintf(stderr, "null-milter: smfi_setconn(%s) failed\n", spec);
		return 69;
	}
	/* libmilter's default listen() backlog is small; 256 simultaneous connects overflow it. */
	if (smfi_setbacklog(backlog) == MI_FAILURE) {
		fprintf(stderr, "null-milter: smfi_setbacklog(%d) failed\n", backlog);
		return 69;
	}
	if (debug > 0)
		(void)smfi_setdbg(debug);
	if (smfi_register(desc) == MI_FAILURE) {
		fprintf(stderr, "null-milter: smfi_register failed\n");
		return 69;
	}
	/* Open the socket now (removing a stale unix socket) so "started" means "accepting". */
	if (smfi_opensocket(1) == MI_FAILURE) {
		fprintf(stderr, "null-milter: cannot listen on %s\n", spec);
		return 69;
	}
	printf("{\"event\":\"started\",\"listen\":\"%s\",\"mode\":\"%s\",\"backlog\":%d,\"pid\":%ld}\n",
	       spec, full_mode ? "full" : "lean", backlog, (long)getpid());
	fflush(stdout);

	int r = smfi_main();

	printf("{\"event\":\"stopped\",\"mode\":\"%s\",\"counters\":{\"negotiate\":%lu,\"connect\":%lu,"
	       "\"helo\":%lu,\"envfrom\":%lu,\"envrcpt\":%lu,\"data\":%lu,\"header\":%lu,\"eoh\":%lu,"
	       "\"body\":%lu,\"body_bytes\":%lu,\"unknown\":%lu,\"eom\":%lu,\"abort\":%lu,\"close\":%lu}}\n",
	       full_mode ? "full" : "lean", __atomic_load_n(&n_negotiate, __ATOMIC_RELAXED),
	       __atomic_load_n(&n_connect, __ATOMIC_RELAXED), __atomic_load_n(&n_helo, __ATOMIC_RELAXED),
	       __atomic_load_n(&n_envfrom, __ATOMIC_RELAXED),
	       __atomic_load_n(&n_envrcpt, __ATOMIC_RELAXED), __atomic_load_n(&n_data, __ATOMIC_RELAXED),
	       __atomic_load_n(&n_header, __ATOMIC_RELAXED), __atomic_load_n(&n_eoh, __ATOMIC_RELAXED),
	       __atomic_load_n(&n_body, __ATOMIC_RELAXED),
	       __atomic_load_n(&n_body_bytes, __ATOMIC_RELAXED),
	       __atomic_load_n(&n_unknown, __ATOMIC_RELAXED), __atomic_load_n(&n_eom, __ATOMIC_RELAXED),
	       __atomic_load_n(&n_abort, __ATOMIC_RELAXED), __atomic_load_n(&n_close, __ATOMIC_RELAXED));
	fflush(stdout);
	return r == MI_SUCCESS ? 0 : 70;
}
