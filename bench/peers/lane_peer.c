// The floor of bench/envoy-overhead: a proxy-wasm 0.2.1 filter in C on the raw ABI (no SDK, no
// libc), making Graylane's lane decision for the bench RuleSet, whose shape is built in
// (bench-ruleset.h, generated from bench/support/ruleset.ts by bench/support/peers.ts): 5 groups,
// their services and hosts, lanes gray (a header, or a cookie regex / x-team prefix and a method /
// OS), canary (a query parameter, weight 10%), blue (weight 5%), sticky on x-user-id.
//
// Builds (-D flags, see bench/support/peers.ts):
//   default          the minimal work: header pairs, route metadata, the decision (override, lane
//                    header, baggage, rules, sticky murmur3 weight), lane/route/baggage written,
//                    clear_route_cache when the route changes. No other call, no other hook.
//   PEER_CALLS       plus every other call Graylane makes on the same request, in the numbers
//                    test/fixtures/host-calls.json pins (generated into bench-calls.h): the clock,
//                    xds.listener_direction, the trace-memory lookup, the lane metric, :status,
//                    and the response/log/delete hooks.
//   PEER_INBOUND     the inbound side: the local service's group, the trace memory written, no route.
//   PEER_NOGROUP     the minimum a request of no group needs: the listener direction (inbound and
//                    outbound share the plugin), the destination lookup (route metadata, :authority),
//                    the stray route header removed, the no-destination stat.
// Envoy lowercases header names, so names compare byte for byte; one pass over the header pairs
// picks out every header the decision reads.
#include "bench-ruleset.h"
#include "bench-calls.h"

typedef unsigned char u8;
typedef unsigned int u32;
typedef unsigned long long u64;
typedef unsigned long usize;

#define IMPORT(name) __attribute__((import_module("env"), import_name(#name)))
#define EXPORT(name) __attribute__((export_name(#name)))

IMPORT(proxy_get_header_map_pairs) u32 proxy_get_header_map_pairs(u32 type, u8 **ret, usize *len);
IMPORT(proxy_get_header_map_value) u32 proxy_get_header_map_value(u32 type, const u8 *k, usize kl, u8 **ret, usize *len);
IMPORT(proxy_replace_header_map_value) u32 proxy_replace_header_map_value(u32 type, const u8 *k, usize kl, const u8 *v, usize vl);
IMPORT(proxy_remove_header_map_value) u32 proxy_remove_header_map_value(u32 type, const u8 *k, usize kl);
IMPORT(proxy_get_property) u32 proxy_get_property(const u8 *path, usize pl, u8 **ret, usize *len);
IMPORT(proxy_call_foreign_function) u32 proxy_call_foreign_function(const u8 *n, usize nl, const u8 *a, usize al, u8 **ret, usize *len);
IMPORT(proxy_get_current_time_nanoseconds) u32 proxy_get_current_time_nanoseconds(u64 *ret);
IMPORT(proxy_define_metric) u32 proxy_define_metric(u32 type, const u8 *n, usize nl, u32 *id);
IMPORT(proxy_increment_metric) u32 proxy_increment_metric(u32 id, long long offset);
IMPORT(proxy_get_shared_data) u32 proxy_get_shared_data(const u8 *k, usize kl, u8 **v, usize *vl, u32 *cas);
IMPORT(proxy_set_shared_data) u32 proxy_set_shared_data(const u8 *k, usize kl, const u8 *v, usize vl, u32 cas);

#define S(lit) (const u8 *)(lit), (sizeof(lit) - 1)
#define REQUEST_HEADERS 0
#define RESPONSE_HEADERS 2

// ---- memory: an arena the host allocates returned data in, reset at the start of each hook ----
static u8 arena[256 * 1024];
static usize arena_top;
EXPORT(proxy_on_memory_allocate) void *proxy_on_memory_allocate(usize size) {
  usize at = (arena_top + 7) & ~(usize)7;
  if (at + size > sizeof(arena)) at = 0; // never in the bench: hooks use a few KB
  arena_top = at + size;
  return arena + at;
}

static int eq(const u8 *a, usize al, const u8 *b, usize bl) {
  if (al != bl) return 0;
  for (usize i = 0; i < al; i++) if (a[i] != b[i]) return 0;
  return 1;
}
static int starts(const u8 *a, usize al, const u8 *b, usize bl) { return al >= bl && eq(a, bl, b, bl); }
static int ows(u8 c) { return c == ' ' || c == '\t'; }

static u32 rotl(u32 x, u32 r) { return (x << r) | (x >> (32 - r)); }
static u32 mix(u32 k) { k *= 0xcc9e2d51; k = rotl(k, 15); return k * 0x1b873593; }
static u32 murmur3(const u8 *p, usize len, u32 h) {
  usize blocks = len >> 2;
  for (usize i = 0; i < blocks; i++) {
    const u8 *b = p + i * 4;
    h ^= mix((u32)b[0] | ((u32)b[1] << 8) | ((u32)b[2] << 16) | ((u32)b[3] << 24));
    h = rotl(h, 13);
    h = h * 5 + 0xe6546b64;
  }
  const u8 *t = p + blocks * 4;
  u32 k = 0;
  switch (len & 3) {
    case 3: k ^= (u32)t[2] << 16; // fall through
    case 2: k ^= (u32)t[1] << 8; // fall through
    case 1: k ^= t[0]; h ^= mix(k);
  }
  h ^= (u32)len;
  h ^= h >> 16; h *= 0x85ebca6b; h ^= h >> 13; h *= 0xc2b2ae35; h ^= h >> 16;
  return h;
}

// ---- the request, picked out in one pass ----
enum { H_AUTHORITY, H_PATH, H_METHOD, H_OVERRIDE, H_LANE, H_ROUTE, H_TRACE, H_STICKY, H_GRAY, H_TEAM, H_UA, H_COOKIE, H_BAGGAGE, H_COUNT };
static const struct { const char *name; usize len; } NAMES[H_COUNT] = {
  {":authority", 10}, {":path", 5}, {":method", 7}, {OVERRIDE_HEADER, sizeof(OVERRIDE_HEADER) - 1},
  {LANE_HEADER, sizeof(LANE_HEADER) - 1}, {ROUTE_HEADER, sizeof(ROUTE_HEADER) - 1}, {TRACE_HEADER, sizeof(TRACE_HEADER) - 1},
  {STICKY_HEADER, sizeof(STICKY_HEADER) - 1}, {"grayrelease", 11}, {"x-team", 6}, {"user-agent", 10}, {"cookie", 6}, {"baggage", 7},
};
static const u8 *hv[H_COUNT];
static usize hl[H_COUNT];
// Baggage may come in several headers (every one's members are kept).
static const u8 *bag[8];
static usize bagl[8];
static u32 bags;

/** Calls `fn` for each name/value of a proxy-wasm pairs map (u32 count, sizes, NUL-ended data); bounds-checked count. */
static void each_pair(const u8 *buf, usize len, void (*fn)(const u8 *k, usize kl, const u8 *v, usize vl)) {
  if (len < 4) return;
  u32 n = *(const u32 *)buf;
  if (4 + (usize)n * 8 > len) return;
  const u32 *sizes = (const u32 *)(buf + 4);
  const u8 *p = buf + 4 + n * 8;
  for (u32 i = 0; i < n; i++) {
    usize kl = sizes[2 * i], vl = sizes[2 * i + 1];
    const u8 *k = p, *v = p + kl + 1;
    p = v + vl + 1;
    fn(k, kl, v, vl);
  }
}

static void pick_header(const u8 *k, usize kl, const u8 *v, usize vl) {
  for (u32 h = 0; h < H_COUNT; h++) {
    if (NAMES[h].len != kl || !eq(k, kl, (const u8 *)NAMES[h].name, kl)) continue;
    if (h == H_BAGGAGE) { if (bags < 8) bag[bags] = v, bagl[bags++] = vl; }
    else if (!hv[h]) hv[h] = v, hl[h] = vl;
    return;
  }
}

static void pick_headers(const u8 *buf, usize len) {
  for (u32 i = 0; i < H_COUNT; i++) hv[i] = 0, hl[i] = 0;
  bags = 0;
  each_pair(buf, len, pick_header);
}

// The matched route's graylane metadata: service and lane.
static const u8 *meta_service, *meta_lane;
static usize msl, mll;
static void pick_metadata(const u8 *k, usize kl, const u8 *v, usize vl) {
  if (eq(k, kl, S("service"))) meta_service = v, msl = vl;
  else if (eq(k, kl, S("lane"))) meta_lane = v, mll = vl;
}

/** "k=v<sep>k=v": the value of key `name` (whitespace around items ignored). */
static int find_pair(const u8 *p, usize l, u8 sep, const u8 *name, usize nl, const u8 **vp, usize *vlp) {
  usize i = 0;
  while (i <= l) {
    usize j = i;
    while (j < l && p[j] != sep) j++;
    usize ks = i;
    while (ks < j && ows(p[ks])) ks++;
    usize eqi = ks;
    while (eqi < j && p[eqi] != '=') eqi++;
    usize ke = eqi;
    while (ke > ks && ows(p[ke - 1])) ke--;
    if (eq(p + ks, ke - ks, name, nl)) {
      usize vs = eqi < j ? eqi + 1 : j;
      while (vs < j && ows(p[vs])) vs++;
      usize ve = j;
      while (ve > vs && ows(p[ve - 1])) ve--;
      *vp = p + vs, *vlp = ve - vs;
      return 1;
    }
    i = j + 1;
  }
  return 0;
}

// ---- the bench RuleSet, built in ----
static int lane_by_name(const u8 *p, usize l) {
  for (int i = 0; i < LANES; i++) if (eq(p, l, (const u8 *)LANE_NAMES[i], LANE_NAME_LEN[i])) return i;
  return -1;
}

/** group * 2 + service (0 web, 1 api), or -1: the route metadata's service, else the :authority host. */
static int destination(const u8 *meta_service, usize msl) {
  char name[32];
  for (int g = 0; g < GROUPS; g++) {
    for (int s = 0; s < 2; s++) {
      usize n = service_name(name, g, s);
      if (meta_service && eq(meta_service, msl, (const u8 *)name, n)) return g * 2 + s;
    }
  }
  const u8 *h = hv[H_AUTHORITY];
  usize l = hl[H_AUTHORITY];
  if (!h) return -1;
  for (usize i = l; i > 0; i--) { // strip the port
    if (h[i - 1] == ':') { l = i - 1; break; }
    if (h[i - 1] < '0' || h[i - 1] > '9') break;
  }
  for (int g = 0; g < GROUPS; g++) {
    for (int s = 0; s < 2; s++) {
      usize n = service_name(name, g, s);
      if (eq(h, l, (const u8 *)name, n)) return g * 2 + s;
      if (s == 0 && l == n + sizeof(HOST_SUFFIX) - 1 && eq(h, n, (const u8 *)name, n) && eq(h + n, l - n, S(HOST_SUFFIX))) return g * 2;
    }
  }
  return -1;
}

static int gray_matches(int g) {
  if (hv[H_GRAY] && eq(hv[H_GRAY], hl[H_GRAY], S(GRAY_VALUE))) return 1;
  if (g < REGEX_GROUPS) {
    // cookie uid ~ "<g+1>[0-9]{3}" (a whole-value match, as the filter's DFAs), method GET or POST
    const u8 *v; usize vl;
    if (!hv[H_COOKIE] || !find_pair(hv[H_COOKIE], hl[H_COOKIE], ';', S("uid"), &v, &vl)) return 0;
    if (vl != 4 || v[0] != (u8)('1' + g)) return 0;
    for (int i = 1; i < 4; i++) if (v[i] < '0' || v[i] > '9') return 0;
    return hv[H_METHOD] && (eq(hv[H_METHOD], hl[H_METHOD], S("GET")) || eq(hv[H_METHOD], hl[H_METHOD], S("POST")));
  }
  if (!hv[H_TEAM] || !starts(hv[H_TEAM], hl[H_TEAM], S("qa-"))) return 0;
  const u8 *ua = hv[H_UA];
  for (usize i = 0; ua && i + 7 <= hl[H_UA]; i++) {
    if (eq(ua + i, 6, S("iPhone")) || eq(ua + i, 7, S("Android"))) return 1;
  }
  return 0;
}

static int canary_matches(void) {
  const u8 *p = hv[H_PATH];
  usize l = hl[H_PATH], q = 0;
  while (q < l && p[q] != '?') q++;
  if (q >= l) return 0;
  const u8 *qs = p + q + 1;
  usize ql = l - q - 1, h = 0;
  while (h < ql && qs[h] != '#') h++;
  const u8 *v; usize vl;
  return find_pair(qs, h, '&', S("beta"), &v, &vl) && eq(v, vl, S("1"));
}

#if PEER_CALLS || PEER_INBOUND
static u8 tm_key[32];
static usize trace_slot_key(int g, const u8 *t, usize tl, u64 *fp) {
  u32 seed = GROUP_SEEDS[g];
  *fp = ((u64)murmur3(t, tl, seed) << 32) | murmur3(t, tl, seed ^ 0x9e3779b9);
  u32 slot = (u32)(*fp % TRACE_SLOTS);
  usize n = 0;
  for (const char *s = "graylane/tm/"; *s; s++) tm_key[n++] = (u8)*s;
  u8 digits[10]; int d = 0;
  do { digits[d++] = (u8)('0' + slot % 10); slot /= 10; } while (slot);
  while (d) tm_key[n++] = digits[--d];
  return n;
}
#endif

#if PEER_CALLS
static int trace_lookup(int g, u64 now_ms) {
  u64 fp;
  usize kl = trace_slot_key(g, hv[H_TRACE], hl[H_TRACE], &fp);
  u8 *v = 0; usize vl = 0; u32 cas = 0;
  if (proxy_get_shared_data(tm_key, kl, &v, &vl, &cas) != 0 || vl < 17) return -1;
  u64 at = 0, got = 0;
  __builtin_memcpy(&got, v, 8);
  __builtin_memcpy(&at, v + 8, 8);
  if (got != fp || now_ms - at > TRACE_TTL_MS || vl != 17u + v[16]) return -1;
  return lane_by_name(v + 17, v[16]);
}
#endif

static u64 now_ms;
static u8 sticky_key[256];

static int decide(int g) {
  int l;
  if (hv[H_OVERRIDE] && hl[H_OVERRIDE] && (l = lane_by_name(hv[H_OVERRIDE], hl[H_OVERRIDE])) >= 0) return l;
  if (hv[H_LANE] && hl[H_LANE] && (l = lane_by_name(hv[H_LANE], hl[H_LANE])) >= 0) return l;
  for (u32 b = 0; b < bags; b++) {
    const u8 *v; usize vl;
    if (find_pair(bag[b], bagl[b], ',', S("graylane"), &v, &vl)) {
      usize semi = 0;
      while (semi < vl && v[semi] != ';') semi++;
      while (semi > 0 && ows(v[semi - 1])) semi--;
      if (semi && (l = lane_by_name(v, semi)) >= 0) return l;
      break;
    }
  }
#if PEER_CALLS
  if (hv[H_TRACE] && hl[H_TRACE] && (l = trace_lookup(g, now_ms)) >= 0) return l;
#endif
  if (gray_matches(g)) return LANE_GRAY;
  if (canary_matches()) return LANE_CANARY;
  const u8 *k = hv[H_STICKY];
  usize kl = hl[H_STICKY];
  if (!k || !kl) k = hv[H_TRACE], kl = hl[H_TRACE];
  if (k && kl && kl < sizeof(sticky_key) - 16) {
    usize n = group_salt((char *)sticky_key, g);
    for (usize i = 0; i < kl; i++) sticky_key[n + i] = k[i];
    u32 bucket = murmur3(sticky_key, n + kl, 0) % 10000;
    for (int i = 1; i < LANES; i++) if (bucket >= BUCKET_START[i] && bucket < BUCKET_END[i]) return i;
  }
  return 0;
}

/** The lane that serves service s (0 web, 1 api): the lane if it has it, else base. */
static int route_of(int lane, int s) { return LANE_SERVES[lane][s] ? lane : 0; }

// ---- hooks ----
static u32 metric_no_destination;
#if PEER_CALLS
static u32 metric_lane[GROUPS][LANES];
struct stream { u32 id; int group, lane; u64 start; u32 status_class; };
static struct stream streams[4096];
static u64 served[GROUPS][LANES][6];
#endif

static u64 clock_ns(void) { u64 t = 0; proxy_get_current_time_nanoseconds(&t); return t; }

#if PEER_CALLS || PEER_NOGROUP
static int inbound_listener(void) {
  u8 *v = 0; usize vl = 0;
  return proxy_get_property(S("xds\0listener_direction"), &v, &vl) == 0 && vl >= 1 && v[0] == 1;
}
#endif

EXPORT(proxy_abi_version_0_2_1) void proxy_abi_version_0_2_1(void) {}
EXPORT(proxy_on_context_create) void proxy_on_context_create(u32 id, u32 parent) { (void)id; (void)parent; }
EXPORT(proxy_on_vm_start) u32 proxy_on_vm_start(u32 root, u32 size) { (void)root; (void)size; return 1; }
EXPORT(proxy_on_configure) u32 proxy_on_configure(u32 root, u32 size) {
  (void)root; (void)size;
  proxy_define_metric(0, S("peer.no_destination"), &metric_no_destination);
#if PEER_CALLS
  char name[64];
  for (int g = 0; g < GROUPS; g++) for (int l = 0; l < LANES; l++) {
    usize n = metric_name(name, g, l);
    proxy_define_metric(0, (const u8 *)name, n, &metric_lane[g][l]);
  }
#endif
  return 1;
}

static u8 baggage[1024];

EXPORT(proxy_on_request_headers) u32 proxy_on_request_headers(u32 id, u32 headers, u32 eos) {
  (void)headers; (void)eos;
  arena_top = 0;
#if PEER_CALLS
  u64 start = 0;
  for (int i = 0; i < GL_REQ_CLOCK; i++) start = clock_ns();
  now_ms = start / 1000000;
  int inbound = 0;
  for (int i = 0; i < GL_REQ_DIRECTION; i++) inbound = inbound_listener();
  (void)inbound;
#endif
#if PEER_NOGROUP
  if (inbound_listener()) return 0;
#endif
  int dest;
  meta_service = meta_lane = 0;
  msl = mll = 0;
#if PEER_INBOUND
  dest = LOCAL_DESTINATION;
  u8 *buf = 0; usize len = 0;
  if (proxy_get_header_map_pairs(REQUEST_HEADERS, &buf, &len) != 0) return 0;
  pick_headers(buf, len);
#else
  u8 *meta = 0; usize meta_len = 0;
  if (proxy_get_property(S("xds\0route_metadata\0filter_metadata\0graylane"), &meta, &meta_len) == 0) each_pair(meta, meta_len, pick_metadata);
#if PEER_NOGROUP
  // No header pairs unless the route metadata names no service of a group: then :authority decides.
  for (u32 i = 0; i < H_COUNT; i++) hv[i] = 0, hl[i] = 0;
  dest = destination(meta_service, msl);
  if (dest < 0 && !meta_service) {
    u8 *a = 0; usize al = 0;
    if (proxy_get_header_map_value(REQUEST_HEADERS, S(":authority"), &a, &al) == 0) hv[H_AUTHORITY] = a, hl[H_AUTHORITY] = al;
    dest = destination(0, 0);
  }
  if (dest < 0) {
    proxy_remove_header_map_value(REQUEST_HEADERS, S(ROUTE_HEADER));
    proxy_increment_metric(metric_no_destination, 1);
    return 0;
  }
#endif
  u8 *buf = 0; usize len = 0;
  if (proxy_get_header_map_pairs(REQUEST_HEADERS, &buf, &len) != 0) return 0;
  pick_headers(buf, len);
  dest = destination(meta_service, msl);
#endif
  if (dest < 0) {
    if (hv[H_ROUTE]) proxy_remove_header_map_value(REQUEST_HEADERS, S(ROUTE_HEADER));
    proxy_increment_metric(metric_no_destination, 1);
    return 0;
  }
  int g = dest / 2, s = dest % 2;
  int lane = decide(g);
  int route = route_of(lane, s);
  const u8 *ln = (const u8 *)LANE_NAMES[lane];
  usize lnl = LANE_NAME_LEN[lane];
#if PEER_INBOUND
  if (hv[H_TRACE] && hl[H_TRACE]) { // trace memory: trace id -> lane, for this service's outbound side
    u64 fp;
    usize kl = trace_slot_key(g, hv[H_TRACE], hl[H_TRACE], &fp);
    u8 v[17 + 16];
#if !PEER_CALLS
    now_ms = clock_ns() / 1000000;
#endif
    __builtin_memcpy(v, &fp, 8);
    __builtin_memcpy(v + 8, &now_ms, 8);
    v[16] = (u8)lnl;
    __builtin_memcpy(v + 17, ln, lnl);
    proxy_set_shared_data(tm_key, kl, v, 17 + lnl, 0);
  }
#endif
  proxy_replace_header_map_value(REQUEST_HEADERS, S(LANE_HEADER), ln, lnl);
#if !PEER_INBOUND
  proxy_replace_header_map_value(REQUEST_HEADERS, S(ROUTE_HEADER), (const u8 *)LANE_NAMES[route], LANE_NAME_LEN[route]);
#endif
  // baggage: the request's other members, then graylane=<lane>
  usize bl = 0;
  for (u32 b = 0; b < bags; b++) {
    const u8 *p = bag[b];
    usize l = bagl[b], i = 0;
    while (i < l) {
      usize j = i;
      while (j < l && p[j] != ',') j++;
      usize st = i, e = j;
      while (st < j && ows(p[st])) st++;
      while (e > st && ows(p[e - 1])) e--;
      int ours = starts(p + st, e - st, S("graylane"));
      if (ours) { usize k = st + 8; while (k < e && ows(p[k])) k++; ours = k == e || p[k] == '='; }
      if (e > st && !ours && bl + (e - st) + 1 < sizeof(baggage) - 64) {
        if (bl) baggage[bl++] = ',';
        __builtin_memcpy(baggage + bl, p + st, e - st);
        bl += e - st;
      }
      i = j + 1;
    }
  }
  if (bl) baggage[bl++] = ',';
  __builtin_memcpy(baggage + bl, "graylane=", 9);
  bl += 9;
  __builtin_memcpy(baggage + bl, ln, lnl);
  bl += lnl;
  proxy_replace_header_map_value(REQUEST_HEADERS, S("baggage"), baggage, bl);
#if !PEER_INBOUND
  if (!eq(meta_lane, mll, (const u8 *)LANE_NAMES[route], LANE_NAME_LEN[route])) proxy_call_foreign_function(S("clear_route_cache"), 0, 0, 0, 0);
#endif
#if PEER_CALLS
  for (int i = 0; i < GL_REQ_METRICS; i++) proxy_increment_metric(metric_lane[g][lane], 1);
  struct stream *st = &streams[id & 4095];
  st->id = id, st->group = g, st->lane = lane, st->start = start, st->status_class = 0;
#else
  (void)id; (void)route;
#endif
  return 0;
}

#if PEER_CALLS
EXPORT(proxy_on_response_headers) u32 proxy_on_response_headers(u32 id, u32 headers, u32 eos) {
  (void)headers; (void)eos;
  arena_top = 0;
  struct stream *st = &streams[id & 4095];
  if (st->id != id) return 0;
  u64 t = 0;
  for (int i = 0; i < GL_RESP_CLOCK; i++) t = clock_ns();
  (void)t;
  for (int i = 0; i < GL_RESP_HEADER_VALUES; i++) {
    u8 *v = 0; usize vl = 0;
    if (proxy_get_header_map_value(RESPONSE_HEADERS, S(":status"), &v, &vl) == 0 && vl == 3) st->status_class = (u32)(v[0] - '0');
  }
  return 0;
}
#if GL_HOOK_ON_LOG
EXPORT(proxy_on_log) void proxy_on_log(u32 id) {
  struct stream *st = &streams[id & 4095];
  if (st->id != id) return;
  served[st->group][st->lane][st->status_class < 6 ? st->status_class : 0]++;
}
#endif
#if GL_HOOK_ON_DELETE
EXPORT(proxy_on_delete) void proxy_on_delete(u32 id) {
  struct stream *st = &streams[id & 4095];
  if (st->id == id) st->id = 0;
}
#endif
#endif
