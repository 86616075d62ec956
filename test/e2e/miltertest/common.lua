-- Helpers shared by the miltertest scripts in this folder, loaded with `dofile(common)` (the
-- test file passes `-D common=PATH -D sock=SOCKET`). miltertest prints nothing when a script
-- calls error(), and it exits silently when a script sends a step the filter suppressed with
-- SMFIP_NO*: so every failure is echoed as "FAIL: ..." first, and optional steps go through
-- `maybe()`, which skips them when the daemon negotiated them away.

SMFIP = { NOCONNECT = 0x1, NOHELO = 0x2, NOMAIL = 0x4, NORCPT = 0x8, NOBODY = 0x10, NOHDRS = 0x20,
  NOEOH = 0x40, NOUNKNOWN = 0x100, NODATA = 0x200, NR_UNKN = 0x20000 }

function fail(msg)
  mt.echo("FAIL: " .. msg)
  error(msg)
end

-- Most mt.* functions return nil on success or an error string.
function check(err, what)
  if err ~= nil then fail(what .. ": " .. tostring(err)) end
end

function reply_name(r)
  if r == nil or r == 0 then return "(none)" end
  return "'" .. string.char(r) .. "'"
end

function expect(conn, wanted, what)
  local got = mt.getreply(conn)
  if got ~= wanted then fail(what .. ": reply " .. reply_name(got) .. ", expected " .. reply_name(wanted)) end
end

function expect_final_accept(conn, what)
  local got = mt.getreply(conn)
  if got ~= SMFIR_CONTINUE and got ~= SMFIR_ACCEPT then fail(what .. ": reply " .. reply_name(got)) end
end

-- Calls `fn` unless the daemon suppressed that step with the SMFIP_NO* bit `flag`.
function maybe(conn, flag, fn)
  if not mt.test_option(conn, flag) then fn() end
end

-- Header, end of header and a body line, each only where the daemon did not suppress it.
function content(conn, subject, body)
  maybe(conn, SMFIP.NOHDRS, function() check(mt.header(conn, "Subject", subject), "header") end)
  maybe(conn, SMFIP.NOEOH, function() check(mt.eoh(conn), "eoh") end)
  maybe(conn, SMFIP.NOBODY, function() check(mt.bodystring(conn, body), "body") end)
end

-- The X-Milter-Policy header added at the last end of message.
function policy_header(conn)
  local v = mt.getheader(conn, "X-Milter-Policy", 0) or mt.getheader(conn, "X-Milter-Policy", 1)
  if v == nil then fail("no X-Milter-Policy header added at end of message") end
  return v
end

function open_connection()
  local conn = mt.connect(sock, 40, 0.05)
  if conn == nil then fail("cannot connect to " .. tostring(sock)) end
  return conn
end
