package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// groupScript is GroupCall on a user's list, in one step so that nodes
// recording calls for the same user at once each see the other's entry.
// KEYS[1] is the list, newest first. ARGV: 1 the new entry (JSON, without
// count or first_started_at), 2 the list's limit, 3 how many entries to
// look through, 4 its peer, 5 its direction, 6 "1" if missed, 7 the
// earliest time (Unix ms) an entry may have ended to group with it, 8 how
// many calls the new entry stands for, 9 "1" if it may group at all, 10
// the entry to push if it groups with none.
// Returns 1 if it grouped, 0 if it was pushed alone.
//
// Entries are as Go writes them: a missing answered_at or participants is
// omitted, times are RFC 3339 with a zone ("Z" or ±hh:mm).
const groupScript = `
local function ms(s)
  if type(s) ~= 'string' then return nil end
  local y, mo, d, h, mi, sec, frac, zone = string.match(s,
    '^(%d%d%d%d)%-(%d%d)%-(%d%d)T(%d%d):(%d%d):(%d%d)(%.?%d*)(.*)$')
  if not y then return nil end
  y, mo, d = tonumber(y), tonumber(mo), tonumber(d)
  if mo <= 2 then y = y - 1 end
  local era = math.floor(y / 400)
  local yoe = y - era * 400
  local mp = (mo + 9) % 12
  local doy = math.floor((153 * mp + 2) / 5) + d - 1
  local doe = yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy
  local days = era * 146097 + doe - 719468
  local t = ((days * 24 + tonumber(h)) * 60 + tonumber(mi)) * 60 + tonumber(sec)
  if zone ~= 'Z' then
    local sign, zh, zm = string.match(zone, '^([%+%-])(%d%d):(%d%d)$')
    if not sign then return nil end
    local off = (tonumber(zh) * 60 + tonumber(zm)) * 60
    if sign == '+' then t = t - off else t = t + off end
  end
  local f = 0
  if frac ~= '' and frac ~= '.' then f = tonumber('0' .. frac) end
  return t * 1000 + math.floor(f * 1000)
end
local function absent(v) return v == nil or v == cjson.null end
local limit = tonumber(ARGV[2])
if ARGV[9] == '1' then
  local head = redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[3]) - 1)
  local earliest = tonumber(ARGV[7])
  for i = 1, #head do
    local ok, o = pcall(cjson.decode, head[i])
    if ok and type(o) == 'table' and o.peer == ARGV[4] then
      -- The newest entry with the peer decides.
      local ended = ms(o.ended_at)
      if absent(o.answered_at)
        and (absent(o.participants) or (type(o.participants) == 'table' and #o.participants == 0))
        and o.direction == ARGV[5] and ((o.missed == true) == (ARGV[6] == '1'))
        and ended and ended >= earliest then
        local count = (tonumber(o.count) or 1) + tonumber(ARGV[8])
        local first = o.first_started_at
        if type(first) ~= 'string' then first = o.started_at end
        local e = string.sub(ARGV[1], 1, -2) .. ',"count":' .. string.format('%d', count)
        if type(first) == 'string' then e = e .. ',"first_started_at":' .. cjson.encode(first) end
        e = e .. '}'
        redis.call('LREM', KEYS[1], 1, head[i])
        redis.call('LPUSH', KEYS[1], e)
        redis.call('LTRIM', KEYS[1], 0, limit - 1)
        return 1
      end
      break
    end
  end
end
redis.call('LPUSH', KEYS[1], ARGV[10])
redis.call('LTRIM', KEYS[1], 0, limit - 1)
return 0
`

// groupArgs are groupScript's arguments for e.
func (r *Redis) groupArgs(e CallEntry, within time.Duration) ([]any, error) {
	alone, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	n := e.calls()
	e.Count, e.FirstStartedAt = 0, nil
	base, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	flag := func(v bool) string {
		if v {
			return "1"
		}
		return "0"
	}
	return []any{string(base), r.limit, GroupScan, e.Peer, e.Direction, flag(e.Missed),
		e.StartedAt.Add(-within).UnixMilli(), n, flag(within > 0 && groupable(e)), string(alone)}, nil
}

// GroupCall implements CallGrouping.
func (r *Redis) GroupCall(ctx context.Context, user string, e CallEntry, within time.Duration) error {
	if within <= 0 || !groupable(e) {
		return r.AppendCall(ctx, user, e)
	}
	args, err := r.groupArgs(e, within)
	if err != nil {
		return err
	}
	if err := r.group.Run(ctx, r.rdb, []string{r.listKey(kindCalls, user)}, args...).Err(); err != nil {
		return wrap("group call", err)
	}
	return wrap("index", r.rdb.SAdd(ctx, r.indexKey(kindCalls), user).Err())
}

// groupCallTo queues GroupCall's commands on p, as appendCallTo does
// AppendCall's (the script goes whole: a pipeline cannot fall back from a
// script Redis does not know).
func (r *Redis) groupCallTo(ctx context.Context, p redis.Pipeliner, user string, e CallEntry, within time.Duration) {
	if within <= 0 || !groupable(e) {
		r.appendCallTo(ctx, p, user, e)
		return
	}
	args, err := r.groupArgs(e, within)
	if err != nil {
		return
	}
	r.group.Eval(ctx, p, []string{r.listKey(kindCalls, user)}, args...)
	p.SAdd(ctx, r.indexKey(kindCalls), user)
}
