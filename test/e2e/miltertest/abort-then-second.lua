-- miltertest: SMFIC_ABORT in the middle of a message, then a second message on the same
-- connection. The aborted message's sender, recipients and queue id must be forgotten; the
-- connection's data (client 127.0.0.2, untrusted) must be kept, so relaying is still refused in
-- the second message. Run by test/e2e/miltertest.test.ts, which then checks the daemon's
-- decision log for the second message (sender, recipients, queue id); exit status 0 = pass.

dofile(common)

local conn = open_connection()
check(mt.negotiate(conn, nil, nil, nil), "negotiate")
check(mt.macro(conn, SMFIC_CONNECT, "j", "mt.example.test"), "connect macros")
check(mt.conninfo(conn, "outside.example.net", "127.0.0.2"), "conninfo")
maybe(conn, SMFIP.NOHELO, function() check(mt.helo(conn, "abort-test.example.net"), "helo") end)

-- Message 1, aborted after its content started.
check(mt.macro(conn, SMFIC_MAIL, "i", "QABORT1"), "mail macros 1")
check(mt.mailfrom(conn, "<aborted@example.test>"), "mailfrom 1")
check(mt.rcptto(conn, "<first@example.test>"), "rcptto 1")
expect(conn, SMFIR_CONTINUE, "rcptto 1")
maybe(conn, SMFIP.NOHDRS, function() check(mt.header(conn, "Subject", "aborted message"), "header 1") end)
check(mt.abort(conn), "abort")

-- Message 2 on the same connection.
check(mt.macro(conn, SMFIC_MAIL, "i", "QSECOND2"), "mail macros 2")
check(mt.mailfrom(conn, "<second@example.test>"), "mailfrom 2")
expect(conn, SMFIR_CONTINUE, "mailfrom 2")
check(mt.rcptto(conn, "<x@other.invalid>"), "rcptto 2 foreign")
expect(conn, SMFIR_REPLYCODE, "rcptto 2 foreign (the client is still untrusted after ABORT)")
check(mt.rcptto(conn, "<second@example.test>"), "rcptto 2 local")
expect(conn, SMFIR_CONTINUE, "rcptto 2 local")
content(conn, "second message", "second body\r\n")
check(mt.eom(conn), "eom 2")
expect_final_accept(conn, "eom 2")
local v = policy_header(conn)
mt.echo("message 2 header: " .. v)
if not string.find(v, "q=QSECOND2", 1, true) then fail("message 2 header lacks q=QSECOND2: " .. v) end
check(mt.disconnect(conn), "disconnect")
mt.echo("abort-then-second: ok")
