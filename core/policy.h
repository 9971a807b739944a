/* policy.h - the Lua policy layer: one VM for default.lua and one per tenant
 * policy file, loaded sandboxed from the policies directory, and one typed C
 * function per hook. Everything that touches policy values runs inside one
 * gate (pcall, instruction budget, wall-time cap, memory cap, traceback) and
 * each tenant's hook time is metered; any failure becomes the hook's
 * documented verdict, never a crash or a hang. */
#ifndef PARLEY_POLICY_H
#define PARLEY_POLICY_H
#include <stddef.h>
#include "buf.h"
#include "conn_info.h"
#include "http.h"
#include "rooms.h"
#include "webhook.h"

/* protocol.md Errors */
enum { ERR_UNSPECIFIED = 0, ERR_INVALID_PASSWORD = 1, ERR_LIMIT_REACHED = 2, ERR_NO_SUCH_ROOM = 3, ERR_ROOM_ERROR = 4 };

typedef struct {
  size_t max_payload, max_signal, max_name, max_password, max_request_id;
  int max_rooms_per_user, max_users_per_room;
  double rate, burst;
  size_t max_rooms;       /* rooms per tenant */
  size_t max_connections; /* users per tenant */
  double resume_grace;    /* seconds a dropped user is kept for a resume (0: none) */
  size_t resume_buffer;   /* bytes of recent events kept per user for a resume */
} policy_limits;

/* Why a request is refused: the Errors code and a message for the client. */
typedef struct {
  int code;
  char msg[160];
} policy_verdict;

typedef struct {
  size_t mem_cap;          /* bytes per VM (the default's, and each tenant file's) */
  long long budget;        /* VM instructions per hook call */
  unsigned time_ms;        /* wall time per hook call (--lua-time-ms) */
  unsigned tenant_hook_ms; /* hook time per second per tenant (--tenant-hook-ms); the bucket holds at most 100 ms */
} policy_options;

typedef struct policy_s policy_t;

/* What an on_connect call read of the request's headers (given to it when
 * recheck_on_reload is on): every header (all), or those named in names
 * (each name followed by a 0 byte, lower case; capped: past the cap, all). */
typedef struct {
  int all;
  buf_t names;
} policy_reads;

void policy_options_default(policy_options *o);
/* Build the VMs (default.lua; default.lua + tenants/<name>.lua per tenant
 * file) and self-check them, all or nothing. On failure *out is NULL and the
 * error (file:line) has been logged. */
int policy_load(const char *dir, const policy_options *o, policy_t **out);
/* A tenant's policy text to load in place of its file (what the admin API
 * is asked to write: checked by a whole load before it is). */
typedef struct {
  const char *tenant; /* a name policy_tenant_name_ok accepts */
  const char *text;
  size_t len;
} policy_override;
/* policy_load with a state directory (NULL or "": none): the .lua files of its tenants/
 * are loaded too, and each overrides dir's file of the same tenant. With ov,
 * ov's text stands for state/tenants/<tenant>.lua (errors name that file).
 * PARLEY_EINVAL when ov is given without a state directory or with a bad name. */
int policy_load_overlay(const char *dir, const char *state, const policy_options *o, const policy_override *ov,
                        policy_t **out);
/* The file serving tenant name (state's tenants/<name>.lua when it exists,
 * else dir's) into out. */
void policy_tenant_path(const char *dir, const char *state, const char *name, char *out, size_t cap);
/* 1 when s (n bytes) may name a tenant policy file: 1-64 of letters, digits,
 * _ . - and not starting with '.' (such files are not read: no "..", no
 * hidden files, no '/'). */
int policy_tenant_name_ok(const char *s, size_t n);
void policy_free(policy_t *P);
/* The limits of tenant t (its policy file's entries over the default's). */
const policy_limits *policy_limits_of(policy_t *P, const tenant_t *t);
const char *policy_version(const policy_t *P);
/* Append to out, as text for a person (`parley --check`), what P holds: the
 * version, and for the default policy and each tenant file the room types
 * (id and name), the limits and the origins. Reads the types inside each
 * VM's gate; 0, or an error (the gate's, logged, or PARLEY_ENOMEM). */
int policy_describe(policy_t *P, buf_t *out);

/* Each returns 0 to accept, or nonzero with *v saying why not. */
/* on_connect(conn) -> tenant[, data[, expires]]: *data gets the data as JSON
 * (malloc'ed) or NULL; it becomes user.data in later hooks. *expires: when
 * the connection's credentials expire (unix seconds), or 0; already past:
 * refused ("credentials expired"). */
int policy_on_connect(policy_t *P, const conn_info *c, char *tenant, size_t cap, char **data, double *expires,
                      policy_reads *rd, policy_verdict *v);
/* The same for a user already admitted (recheck_on_reload): not charged to
 * the server-wide bucket that paces new connections; the data is not kept. */
int policy_on_connect_again(policy_t *P, const conn_info *c, char *tenant, size_t cap, double *expires,
                            policy_reads *rd, policy_verdict *v);
/* 1 when default.lua sets recheck_on_reload = true: after a reload, on_connect
 * runs again for every user, on what it read when the user was admitted. */
int policy_recheck_on_reload(const policy_t *P);
/* out's strings are malloc'ed: free them with policy_settings_free. */
int policy_create_room(policy_t *P, const user_t *u, const room_settings *req, room_settings *out, policy_verdict *v);
int policy_check_password(policy_t *P, const room_t *r, const char *supplied, const user_t *u, policy_verdict *v);
/* Append the JSON of the JOIN_ROOM spec for u joining r. */
int policy_spec(policy_t *P, const room_t *r, const user_t *u, buf_t *json, policy_verdict *v);
int policy_update_room(policy_t *P, const room_t *r, const room_settings *req, const user_t *u, room_settings *out,
                       policy_verdict *v);
/* Map a reason (e.g. "no_such_room") for event to an Errors code and message,
 * with tenant t's policy (NULL: the default's). */
void policy_map_error(policy_t *P, const tenant_t *t, const char *reason, const char *event, policy_verdict *v);
/* 1 when a browser page from origin (n bytes; NULL: no Origin header) may
 * connect as tenant t (NULL: before the tenant is known), by the policy's
 * `origins` list. *any: every origin is allowed (CORS may answer "*"). */
int policy_origin_allowed(policy_t *P, const tenant_t *t, const char *origin, size_t n, int *any);
/* Tenant t's webhook (its file's `webhooks`, else default.lua's), or NULL;
 * borrowed until the next reload. */
const webhook_target *policy_webhook_of(policy_t *P, const tenant_t *t);
/* 1 when t's policy defines on_signal (SIGNAL then goes through Lua). */
int policy_wants_signal(policy_t *P, const tenant_t *t);
/* on_signal(room, user, target, signal_json) -> true to relay, or false/nil, reason. */
int policy_on_signal(policy_t *P, const room_t *r, const user_t *u, const user_t *target, const char *signal, size_t n,
                     policy_verdict *v);
/* Lifecycle notices, for policies that define the hooks (else no call at all;
 * its errors are logged and change nothing; on_join and on_leave may return
 * an action for the room, below):
 * on_join(room, user) once u joined r; on_leave(room, user, reason) once u
 * left (room nil when that deleted it; reason "left": its DISCONNECT or 41,
 * "disconnected": its connection ended, or its resume grace); and
 * on_room_closed(roomID, reason) once a room is gone ("empty": its last
 * member left; "owner_left": its type closes it when its owner leaves). */
/* What on_join and on_leave may return, for the room (nil: nothing):
 * { owner = userID, close = true, meta = value } (any of them). */
typedef struct {
  char owner[ID_LEN + 1]; /* "": keep the owner */
  int close;              /* close the room (its members get DISCONNECT room_closed) */
  char *meta;             /* the room's new meta as JSON (malloc'ed), or NULL: as it is */
} policy_action;
void policy_action_free(policy_action *a);
/* act (NULL: what the hook returns is not read) gets its action; zeroed when none. */
void policy_on_join(policy_t *P, const room_t *r, const user_t *u, policy_action *act);
void policy_on_leave(policy_t *P, const tenant_t *t, const room_t *r, const user_t *u, const char *reason,
                     policy_action *act);
void policy_on_room_closed(policy_t *P, const tenant_t *t, const char *room_id, const char *reason);
/* The room types tenant t may create, as a JSON array sorted by id:
 * [{"type":N,"name":"…","maxUsers":M}] (M: the type's max_users within the
 * tenant's max_users_per_room); at most 1024 of them. */
int policy_types_json(policy_t *P, const tenant_t *t, buf_t *out);
void policy_settings_free(room_settings *s);

#endif
