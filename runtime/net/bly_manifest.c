/*  =========================================================================
    bly_manifest - role manifests: what one blyan-node runs
    ========================================================================= */

#include "bly_manifest.h"

#include "bly_limits.h"
#include "bly_sock.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_KEY_NAME_MAX 32       //  Key names are short identifiers.
#define S_ERRORS_MAX 32         //  Mistakes reported per file before giving up.

typedef struct {
    char key[S_KEY_NAME_MAX];               //  Key name.
    char value[BLY_MANIFEST_LINE_MAX];      //  Value text, unquoted.
    int line;                               //  Line it came from.
} s_entry_t;

typedef struct {
    int line;                                //  Line of the section header.
    s_entry_t entries[BLY_MANIFEST_KEYS_MAX];
    size_t entry_count;
} s_section_t;

struct bly_manifest_t {
    char name[BLY_PATH_MAX];                       //  File name for messages.
    char dir[BLY_PATH_MAX];                        //  Folder relative paths start from.
    bool has_node;                                 //  A node section was seen.
    s_section_t node;                              //  The node section.
    s_section_t actors[BLY_NODE_ACTORS_MAX];       //  Actor sections in file order.
    size_t actor_count;
};

typedef struct {
    bly_manifest_t *manifest;     //  Being filled.
    char *err;                    //  Error text (lines appended).
    size_t err_size;
    size_t err_used;
    int errors;                   //  Mistakes found.
    s_section_t *section;         //  Section keys go to; NULL before the first.
} s_parse_t;

static void s_error(s_parse_t *ctx, int line, const char *format, ...) BLY_PRINTF(3, 4);

static void
s_error(s_parse_t *ctx, int line, const char *format, ...)
{
    ctx->errors++;
    if (ctx->errors > S_ERRORS_MAX || ctx->err_used + 1 >= ctx->err_size)
        return;
    char reason[BLY_MANIFEST_LINE_MAX + 128];
    va_list args;
    va_start(args, format);
    vsnprintf(reason, sizeof(reason), format, args);
    va_end(args);
    int n = snprintf(ctx->err + ctx->err_used, ctx->err_size - ctx->err_used, "%s%s:%d: %s",
                     ctx->err_used ? "\n" : "", ctx->manifest->name, line, reason);
    if (n > 0)
        ctx->err_used += (size_t) n < ctx->err_size - ctx->err_used
                             ? (size_t) n
                             : ctx->err_size - ctx->err_used - 1;
}

static s_entry_t *
s_section_find(s_section_t *section, const char *key)
{
    for (size_t i = 0; i < section->entry_count; i++)
        if (strcmp(section->entries[i].key, key) == 0)
            return &section->entries[i];
    return NULL;
}

//  Start a section from a header line (column 0).
static void
s_parse_header(s_parse_t *ctx, const char *text, int line)
{
    bly_manifest_t *m = ctx->manifest;
    ctx->section = NULL;
    if (strcmp(text, "node") == 0) {
        if (m->has_node) {
            s_error(ctx, line, "duplicate node section (first at line %d)", m->node.line);
            return;
        }
        m->has_node = true;
        m->node.line = line;
        ctx->section = &m->node;
    } else if (strcmp(text, "actor") == 0) {
        if (m->actor_count >= BLY_NODE_ACTORS_MAX) {
            s_error(ctx, line, "more than %d actor sections", BLY_NODE_ACTORS_MAX);
            return;
        }
        ctx->section = &m->actors[m->actor_count++];
        ctx->section->line = line;
    } else if (strchr(text, '=')) {
        s_error(ctx, line, "key outside a section (indent keys by 4 spaces under 'node' or "
                           "'actor')");
    } else {
        s_error(ctx, line, "unknown section '%s' (expected 'node' or 'actor')", text);
    }
}

//  Split "value", "value # comment" or "\"quoted\" # comment" into `out`.
static int
s_parse_value(const char *text, char *out, size_t out_size, const char **why)
{
    text += strspn(text, " ");
    size_t len;
    if (*text == '"') {
        const char *close = strchr(text + 1, '"');
        if (!close) {
            *why = "unterminated quoted value";
            return -1;
        }
        len = (size_t) (close - text - 1);
        const char *rest = close + 1 + strspn(close + 1, " ");
        if (*rest && *rest != '#') {
            *why = "text after a quoted value";
            return -1;
        }
        text++;
    } else {
        const char *comment = strstr(text, " #");
        len = comment ? (size_t) (comment - text) : strlen(text);
        while (len > 0 && text[len - 1] == ' ')
            len--;
    }
    bly_assert(len < out_size);
    memcpy(out, text, len);
    out[len] = 0;
    return 0;
}

//  One "key = value" line inside a section.
static void
s_parse_entry(s_parse_t *ctx, const char *text, int line)
{
    if (!ctx->section) {
        s_error(ctx, line, "indented line outside a section");
        return;
    }
    size_t key_len = strspn(text, "abcdefghijklmnopqrstuvwxyz0123456789_");
    const char *rest = text + key_len + strspn(text + key_len, " ");
    if (key_len == 0 || *rest != '=') {
        s_error(ctx, line, "expected 'key = value'");
        return;
    }
    if (key_len >= S_KEY_NAME_MAX) {
        s_error(ctx, line, "key name longer than %d characters", S_KEY_NAME_MAX - 1);
        return;
    }
    char key[S_KEY_NAME_MAX];
    memcpy(key, text, key_len);
    key[key_len] = 0;
    s_entry_t *seen = s_section_find(ctx->section, key);
    if (seen) {
        s_error(ctx, line, "duplicate key '%s' (first at line %d)", key, seen->line);
        return;
    }
    if (ctx->section->entry_count >= BLY_MANIFEST_KEYS_MAX) {
        s_error(ctx, line, "more than %d keys in one section", BLY_MANIFEST_KEYS_MAX);
        return;
    }
    s_entry_t *entry = &ctx->section->entries[ctx->section->entry_count];
    const char *why = NULL;
    if (s_parse_value(rest + 1, entry->value, sizeof(entry->value), &why) != 0) {
        s_error(ctx, line, "%s", why);
        return;
    }
    memcpy(entry->key, key, key_len + 1);
    entry->line = line;
    ctx->section->entry_count++;
}

//  One physical line (without its newline).
static void
s_parse_line(s_parse_t *ctx, char *text, size_t len, int line)
{
    if (memchr(text, 0, len)) {
        s_error(ctx, line, "NUL byte in line");
        return;
    }
    while (len > 0 && (text[len - 1] == ' ' || text[len - 1] == '\r'))
        len--;
    text[len] = 0;
    size_t indent = strspn(text, " ");
    if (text[indent] == '\t' || strchr(text, '\t')) {
        s_error(ctx, line, "tab character (indent with 4 spaces)");
        return;
    }
    for (size_t i = 0; i < len; i++)
        if ((unsigned char) text[i] < ' ') {
            s_error(ctx, line, "control character in line");
            return;
        }
    if (text[indent] == 0 || text[indent] == '#')
        return;
    if (indent == 0) {
        //  A section name may carry a comment: "actor   # the registry".
        char *hash = strchr(text, '#');
        if (hash) {
            *hash = 0;
            for (size_t n = strlen(text); n > 0 && text[n - 1] == ' '; n--)
                text[n - 1] = 0;
        }
        s_parse_header(ctx, text, line);
    }
    else if (indent == 4)
        s_parse_entry(ctx, text + 4, line);
    else
        s_error(ctx, line, "bad indentation: %zu spaces (keys are indented by 4)", indent);
}

//  Split the text into lines and parse each.
static void
s_parse_text(s_parse_t *ctx, const char *text, size_t size)
{
    char buf[BLY_MANIFEST_LINE_MAX + 1];
    size_t start = 0;
    int line = 0;
    while (start < size) {
        line++;
        if (line > BLY_MANIFEST_LINES_MAX) {
            s_error(ctx, line, "more than %d lines", BLY_MANIFEST_LINES_MAX);
            return;
        }
        const char *nl = memchr(text + start, '\n', size - start);
        size_t len = nl ? (size_t) (nl - (text + start)) : size - start;
        if (len > BLY_MANIFEST_LINE_MAX) {
            s_error(ctx, line, "line longer than %d characters", BLY_MANIFEST_LINE_MAX);
        } else {
            memcpy(buf, text + start, len);
            buf[len] = 0;
            s_parse_line(ctx, buf, len, line);
        }
        start += len + 1;
    }
}

static bool
s_parse_int(const char *text, int64_t *value)
{
    if (!*text)
        return false;
    errno = 0;
    char *end = NULL;
    long long v = strtoll(text, &end, 10);
    if (errno || *end || (text[0] != '-' && (text[0] < '0' || text[0] > '9')))
        return false;
    *value = v;
    return true;
}

static bool
s_is_printable(const char *text)
{
    for (const char *c = text; *c; c++)
        if ((unsigned char) *c < ' ' || *c == 127)
            return false;
    return true;
}

static bool
s_check_choice(const char *value, const char *choices)
{
    size_t len = strlen(value);
    const char *c = choices;
    while (c && *c) {
        const char *bar = strchr(c, '|');
        size_t word = bar ? (size_t) (bar - c) : strlen(c);
        if (word == len && strncmp(c, value, len) == 0)
            return true;
        c = bar ? bar + 1 : NULL;
    }
    return false;
}

static bool
s_check_endpoints(const char *value, int64_t max)
{
    char copy[BLY_MANIFEST_LINE_MAX];
    snprintf(copy, sizeof(copy), "%s", value);
    int64_t count = 0;
    char *save = NULL;
    for (char *item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        item += strspn(item, " ");
        size_t len = strlen(item);
        while (len > 0 && item[len - 1] == ' ')
            item[--len] = 0;
        if (++count > max || !bly_sock_endpoint_valid(item, false))
            return false;
    }
    return count > 0;
}

static bool
s_check_range(const char *value, int64_t max)
{
    const char *dash = strchr(value, '-');
    if (!dash || dash == value)
        return false;
    char first_text[32];
    size_t len = (size_t) (dash - value);
    if (len >= sizeof(first_text))
        return false;
    memcpy(first_text, value, len);
    first_text[len] = 0;
    int64_t first, last;
    return s_parse_int(first_text, &first) && s_parse_int(dash + 1, &last) && first >= 0
           && first <= last && last <= max;
}

//  Check one value against its key; reports the mistake.
static void
s_check_value(s_parse_t *ctx, const bly_manifest_key_t *key, const s_entry_t *entry)
{
    const char *v = entry->value;
    int64_t number = 0;
    int line = entry->line;
    if (!*v) {
        s_error(ctx, line, "empty value for '%s'", key->name);
        return;
    }
    switch (key->type) {
    case BLY_MANIFEST_STRING:
        if ((int64_t) strlen(v) > key->max || !s_is_printable(v))
            s_error(ctx, line, "'%s' must be printable text of at most %lld characters",
                    key->name, (long long) key->max);
        break;
    case BLY_MANIFEST_INT:
        if (!s_parse_int(v, &number) || number < key->min || number > key->max)
            s_error(ctx, line, "'%s' must be an integer in [%lld, %lld], not '%s'", key->name,
                    (long long) key->min, (long long) key->max, v);
        break;
    case BLY_MANIFEST_BOOL:
        if (strcmp(v, "true") != 0 && strcmp(v, "false") != 0)
            s_error(ctx, line, "'%s' must be true or false, not '%s'", key->name, v);
        break;
    case BLY_MANIFEST_ENDPOINT:
        if (!bly_sock_endpoint_valid(v, false))
            s_error(ctx, line, "'%s' is not a valid endpoint (tcp://HOST:PORT, ipc://PATH): '%s'",
                    key->name, v);
        break;
    case BLY_MANIFEST_ENDPOINTS:
        if (!s_check_endpoints(v, key->max))
            s_error(ctx, line, "'%s' must be 1 to %lld comma-separated endpoints (tcp://HOST:PORT)",
                    key->name, (long long) key->max);
        break;
    case BLY_MANIFEST_PATH:
        if (strlen(v) >= BLY_PATH_MAX || !s_is_printable(v))
            s_error(ctx, line, "'%s' is not a usable path", key->name);
        break;
    case BLY_MANIFEST_HEX32:
        if (strlen(v) != 64 || strspn(v, "0123456789abcdefABCDEF") != 64)
            s_error(ctx, line, "'%s' must be 64 hex characters (a node id)", key->name);
        break;
    case BLY_MANIFEST_RANGE:
        if (!s_check_range(v, key->max))
            s_error(ctx, line, "'%s' must be FIRST-LAST with 0 <= FIRST <= LAST <= %lld",
                    key->name, (long long) key->max);
        break;
    case BLY_MANIFEST_CHOICE:
        if (!s_check_choice(v, key->choices))
            s_error(ctx, line, "'%s' must be one of %s, not '%s'", key->name, key->choices, v);
        break;
    }
}

//  Check a section against a key table. `skip` is a key checked elsewhere.
static void
s_check_section(s_parse_t *ctx, const s_section_t *section, const char *what,
                const bly_manifest_key_t *keys, size_t key_count, const char *skip)
{
    for (size_t i = 0; i < section->entry_count; i++) {
        const s_entry_t *entry = &section->entries[i];
        if (skip && strcmp(entry->key, skip) == 0)
            continue;
        const bly_manifest_key_t *key = NULL;
        for (size_t k = 0; k < key_count && !key; k++)
            if (strcmp(keys[k].name, entry->key) == 0)
                key = &keys[k];
        if (key)
            s_check_value(ctx, key, entry);
        else
            s_error(ctx, entry->line, "unknown key '%s' in %s", entry->key, what);
    }
    for (size_t k = 0; k < key_count; k++)
        if (keys[k].required && !s_section_find((s_section_t *) section, keys[k].name))
            s_error(ctx, section->line, "%s lacks required key '%s' (%s)", what, keys[k].name,
                    keys[k].help);
}

static const bly_manifest_role_t *
s_role_find(const bly_manifest_schema_t *schema, const char *name)
{
    for (size_t i = 0; i < schema->role_count; i++)
        if (strcmp(schema->roles[i].role, name) == 0)
            return &schema->roles[i];
    return NULL;
}

static void
s_check_actor(s_parse_t *ctx, const bly_manifest_schema_t *schema, size_t index)
{
    bly_manifest_t *m = ctx->manifest;
    s_section_t *section = &m->actors[index];
    s_entry_t *role = s_section_find(section, "role");
    if (!role) {
        s_error(ctx, section->line, "actor section lacks 'role'");
        return;
    }
    const bly_manifest_role_t *spec = s_role_find(schema, role->value);
    if (!spec) {
        char known[256] = "";
        for (size_t i = 0; i < schema->role_count; i++)
            snprintf(known + strlen(known), sizeof(known) - strlen(known), "%s%s", i ? ", " : "",
                     schema->roles[i].role);
        s_error(ctx, role->line, "unknown role '%s' (known roles: %s)", role->value, known);
        return;
    }
    for (size_t j = 0; j < index; j++) {
        s_entry_t *other = s_section_find(&m->actors[j], "role");
        if (other && strcmp(other->value, role->value) == 0) {
            s_error(ctx, role->line, "role '%s' appears twice (first at line %d)", role->value,
                    other->line);
            return;
        }
    }
    char what[64];
    snprintf(what, sizeof(what), "actor '%s'", spec->role);
    s_check_section(ctx, section, what, spec->keys, spec->key_count, "role");
}

bly_manifest_t *
bly_manifest_parse(const char *text, size_t size, const char *name, const char *dir,
                   const bly_manifest_schema_t *schema, char *err, size_t err_size)
{
    bly_assert(text || size == 0);
    bly_assert(name);
    bly_assert(dir);
    bly_assert(schema);
    bly_assert(err && err_size > 0);
    err[0] = 0;
    bly_manifest_t *m = calloc(1, sizeof(*m));
    if (!m) {
        snprintf(err, err_size, "%s:0: out of memory", name);
        return NULL;
    }
    snprintf(m->name, sizeof(m->name), "%s", name);
    snprintf(m->dir, sizeof(m->dir), "%s", dir);
    s_parse_t ctx = {.manifest = m, .err = err, .err_size = err_size};
    if (size > BLY_MANIFEST_SIZE_MAX)
        s_error(&ctx, 1, "file larger than %u bytes", BLY_MANIFEST_SIZE_MAX);
    else
        s_parse_text(&ctx, text, size);
    if (ctx.errors == 0 && !m->has_node)
        s_error(&ctx, 1, "no 'node' section");
    if (ctx.errors == 0) {
        s_check_section(&ctx, &m->node, "node section", schema->node_keys,
                        schema->node_key_count, NULL);
        for (size_t i = 0; i < m->actor_count; i++)
            s_check_actor(&ctx, schema, i);
    }
    if (ctx.errors > 0)
        bly_manifest_destroy(&m);
    return m;
}

bly_manifest_t *
bly_manifest_load(const char *path, const bly_manifest_schema_t *schema, char *err,
                  size_t err_size)
{
    bly_assert(path);
    bly_assert(schema);
    bly_assert(err && err_size > 0);
    FILE *file = fopen(path, "rb");
    if (!file) {
        snprintf(err, err_size, "%s:0: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    //  Read one byte past the cap so an oversize file is noticed.
    char *text = malloc(BLY_MANIFEST_SIZE_MAX + 1);
    size_t size = text ? fread(text, 1, BLY_MANIFEST_SIZE_MAX + 1, file) : 0;
    bool failed = !text || ferror(file);
    fclose(file);
    if (failed) {
        snprintf(err, err_size, "%s:0: cannot read", path);
        free(text);
        return NULL;
    }
    char dir[BLY_PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = 0;
    else
        snprintf(dir, sizeof(dir), ".");
    bly_manifest_t *m = bly_manifest_parse(text, size, path, dir, schema, err, err_size);
    free(text);
    return m;
}

void
bly_manifest_destroy(bly_manifest_t **self_p)
{
    bly_assert(self_p);
    free(*self_p);
    *self_p = NULL;
}

const char *
bly_manifest_name(const bly_manifest_t *self)
{
    bly_assert(self);
    return self->name;
}

size_t
bly_manifest_actor_count(const bly_manifest_t *self)
{
    bly_assert(self);
    return self->actor_count;
}

static const s_section_t *
s_section(const bly_manifest_t *self, int section)
{
    bly_assert(self);
    bly_assert(section >= BLY_MANIFEST_NODE);
    if (section == BLY_MANIFEST_NODE)
        return &self->node;
    bly_assert((size_t) section < self->actor_count);
    return &self->actors[section];
}

const char *
bly_manifest_actor_role(const bly_manifest_t *self, size_t index)
{
    bly_assert(self);
    bly_assert(index < self->actor_count);
    return bly_manifest_get(self, (int) index, "role");
}

const char *
bly_manifest_get(const bly_manifest_t *self, int section, const char *key)
{
    bly_assert(key);
    const s_entry_t *entry = s_section_find((s_section_t *) s_section(self, section), key);
    return entry ? entry->value : NULL;
}

int64_t
bly_manifest_get_int(const bly_manifest_t *self, int section, const char *key, int64_t fallback)
{
    const char *text = bly_manifest_get(self, section, key);
    int64_t value = fallback;
    if (text && !s_parse_int(text, &value))
        value = fallback;
    return value;
}

bool
bly_manifest_get_bool(const bly_manifest_t *self, int section, const char *key, bool fallback)
{
    const char *text = bly_manifest_get(self, section, key);
    return text ? strcmp(text, "true") == 0 : fallback;
}

int
bly_manifest_get_path(const bly_manifest_t *self, int section, const char *key, char *buf,
                      size_t buf_size)
{
    bly_assert(buf);
    const char *text = bly_manifest_get(self, section, key);
    if (!text)
        return -1;
    int n = text[0] == '/' ? snprintf(buf, buf_size, "%s", text)
                           : snprintf(buf, buf_size, "%s/%s", self->dir, text);
    return n > 0 && (size_t) n < buf_size ? 0 : -1;
}

int
bly_manifest_line(const bly_manifest_t *self, int section, const char *key)
{
    bly_assert(key);
    const s_section_t *s = s_section(self, section);
    const s_entry_t *entry = s_section_find((s_section_t *) s, key);
    return entry ? entry->line : s->line;
}
