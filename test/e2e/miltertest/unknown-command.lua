-- miltertest: an unknown SMTP command (SMFIC_UNKNOWN, 'U') that the daemon cannot suppress.
-- The negotiation offer leaves out SMFIP_NOUNKNOWN (0x100) and SMFIP_NR_UNKN (0x20000), so the
-- daemon must accept 'U' and answer it (before HELO and inside a transaction), then carry on
-- with the session as if nothing happened: the message is still accepted with the header.
-- Run by test/e2e/miltertest.test.ts; exit status 0 = pass.

dofile(common)

local conn = open_connection()
-- mt.negotiate(conn, version, PROTOCOL FLAGS, ACTIONS): protocol before actions (verified on the wire).
local offer = 0x1FFFFF - SMFIP.NOUNKNOWN - SMFIP.NR_UNKN
check(mt.negotiate(conn, 6, offer, 0x1FF), "negotiate")
if mt.test_option(conn, SMFIP.NOUNKNOWN) then fail("daemon requested NOUNKNOWN although it was not offered") end

check(mt.macro(conn, SMFIC_CONNECT, "j", "mt.example.test"), "connect macros")
check(mt.conninfo(conn, "client.example.test", "127.0.0.2"), "conninfo")
expect(conn, SMFIR_CONTINUE, "connect")

local function unknown(cmd)
  check(mt.unknown(conn, cmd), "unknown " .. cmd)
  local r = mt.getreply(conn)
  mt.echo("reply to " .. cmd .. ": " .. reply_name(r))
  if r ~= SMFIR_CONTINUE and r ~= SMFIR_REJECT and r ~= SMFIR_TEMPFAIL and r ~= SMFIR_REPLYCODE then
    fail("unexpected reply to " .. cmd .. ": " .. reply_name(r))
  end
end

unknown("XFOO before-helo")        -- libmilter allows 'U' right after 'C'
maybe(conn, SMFIP.NOHELO, function()
  check(mt.helo(conn, "client.example.test"), "helo")
  expect(conn, SMFIR_CONTINUE, "helo")
end)
unknown("XFOO after-helo")
check(mt.mailfrom(conn, "<sender@example.test>"), "mailfrom")
expect(conn, SMFIR_CONTINUE, "mailfrom")
unknown("XBAR inside-transaction")
check(mt.rcptto(conn, "<user@example.test>"), "rcptto")
expect(conn, SMFIR_CONTINUE, "rcptto local")
unknown("XBAZ after-rcpt")
content(conn, "after unknown commands", "body\r\n")
check(mt.eom(conn), "eom")
expect_final_accept(conn, "eom")
mt.echo("header: " .. policy_header(conn))
check(mt.disconnect(conn), "disconnect")
mt.echo("unknown-command: ok")
