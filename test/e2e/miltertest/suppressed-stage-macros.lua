-- miltertest: macros that arrive for stages the daemon suppressed. Both MTAs send a 'D' packet
-- for a stage even when its command is turned off with SMFIP_NO*: here the queue id `i` comes
-- only in a DATA-stage macro ('D' 'T') while SMFIC_DATA itself is not sent (the daemon
-- negotiates SMFIP_NODATA); the header added at end of message must still carry that q=.
-- A second message on the same connection must not inherit the first one's queue id, and a third
-- gets `i` from an end-of-message macro only (as Postfix sends it). Run by
-- test/e2e/miltertest.test.ts; exit status 0 = pass.

dofile(common)

local STAGE_DATA, STAGE_EOM = string.byte("T"), string.byte("E")

local conn = open_connection()
check(mt.negotiate(conn, nil, nil, nil), "negotiate")
mt.echo("daemon suppressed: DATA=" .. tostring(mt.test_option(conn, SMFIP.NODATA)) ..
  " HDRS=" .. tostring(mt.test_option(conn, SMFIP.NOHDRS)) ..
  " EOH=" .. tostring(mt.test_option(conn, SMFIP.NOEOH)) ..
  " BODY=" .. tostring(mt.test_option(conn, SMFIP.NOBODY)) ..
  " UNKNOWN=" .. tostring(mt.test_option(conn, SMFIP.NOUNKNOWN)))

check(mt.macro(conn, SMFIC_CONNECT, "j", "mt.example.test"), "connect macros")
check(mt.conninfo(conn, "client.example.test", "127.0.0.3"), "conninfo")
maybe(conn, SMFIP.NOHELO, function() check(mt.helo(conn, "client.example.test"), "helo") end)

-- One message; `stage`/`qid` say where its queue id comes from (nil = nowhere).
local function message(n, stage, qid)
  check(mt.mailfrom(conn, "<sender" .. n .. "@example.test>"), "mailfrom " .. n)
  expect(conn, SMFIR_CONTINUE, "mailfrom " .. n)
  check(mt.rcptto(conn, "<user" .. n .. "@example.test>"), "rcptto " .. n)
  expect(conn, SMFIR_CONTINUE, "rcptto " .. n)
  if stage == STAGE_DATA then check(mt.macro(conn, STAGE_DATA, "i", qid), "DATA-stage macro " .. n) end
  maybe(conn, SMFIP.NODATA, function() check(mt.data(conn), "data " .. n) end)
  content(conn, "message " .. n, "body " .. n .. "\r\n")
  if stage == STAGE_EOM then check(mt.macro(conn, STAGE_EOM, "i", qid), "EOM-stage macro " .. n) end
  check(mt.eom(conn), "eom " .. n)
  expect_final_accept(conn, "eom " .. n)
  local v = policy_header(conn)
  mt.echo("message " .. n .. " header: " .. v)
  return v
end

local v1 = message(1, STAGE_DATA, "QDATA1")
if not string.find(v1, "q=QDATA1", 1, true) then fail("message 1: header lacks q=QDATA1: " .. v1) end
local v2 = message(2, nil, nil)
if string.find(v2, "QDATA1", 1, true) then fail("message 2 inherited message 1's queue id: " .. v2) end
local v3 = message(3, STAGE_EOM, "QEOM3")
if not string.find(v3, "q=QEOM3", 1, true) then fail("message 3: header lacks q=QEOM3: " .. v3) end
check(mt.disconnect(conn), "disconnect")
mt.echo("suppressed-stage-macros: ok")
