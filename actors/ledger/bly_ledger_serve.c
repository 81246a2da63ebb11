/*  =========================================================================
    bly_ledger_serve - the `ledger` protocol's queries over a ledger and its store

    Shared by the two actors that front a ledger: the solo ledger actor
    (role "ledger") and the consensus replica (role "consensus"). Queries
    (account, head, block, tx, pol, proof) are answered from the committed
    ledger and its LMDB store; a submission goes to the caller's `submit`
    callback (each actor has its own mempool).
    ========================================================================= */

#include "bly_ledger_serve.h"

#include <inttypes.h>
#include <string.h>

bly_ledger_msg_t *
bly_ledger_serve_error(int code, const char *reason)
{
    bly_ledger_msg_t *r = bly_ledger_msg_new(BLY_LEDGER_MSG_ERROR);
    bly_assert(r);
    bly_ledger_msg_set_code(r, (uint16_t) code);
    char text[BLY_LEDGER_REASON_MAX + 1];
    snprintf(text, sizeof(text), "%s", reason);
    if (bly_ledger_msg_set_reason(r, text) != 0)
        (void) !bly_ledger_msg_set_reason(r, "refused");
    return r;
}

static bly_ledger_msg_t *
s_account(bly_ledger_serve_t *self, const bly_ledger_msg_t *req)
{
    size_t size;
    bly_ledger_account_t a;
    bool exists = bly_ledger_account(self->ledger, bly_ledger_msg_key(req, &size), &a) == 0;
    bly_ledger_msg_t *r = bly_ledger_msg_new(BLY_LEDGER_MSG_ACCOUNT);
    bly_assert(r && bly_ledger_msg_set_key(r, a.key, 32) == 0);
    bly_ledger_msg_set_exists(r, exists);
    bly_ledger_msg_set_balance(r, a.balance);
    bly_ledger_msg_set_nonce(r, a.nonce);
    bly_ledger_msg_set_stake(r, a.stake);
    bly_ledger_msg_set_height(r, bly_ledger_height(self->ledger));
    return r;
}

static bly_ledger_msg_t *
s_head(bly_ledger_serve_t *self)
{
    bly_ledger_msg_t *r = bly_ledger_msg_new(BLY_LEDGER_MSG_HEAD);
    bly_assert(r);
    bly_ledger_msg_set_height(r, bly_ledger_height(self->ledger));
    bly_ledger_msg_set_time_ms(r, bly_ledger_time_ms(self->ledger));
    bly_assert(bly_ledger_msg_set_chain_id(r, bly_ledger_chain_id(self->ledger)) == 0);
    bly_assert(bly_ledger_msg_set_block_hash(r, bly_ledger_block_hash(self->ledger), 32) == 0);
    bly_assert(bly_ledger_msg_set_app_hash(r, bly_ledger_app_hash(self->ledger), 32) == 0);
    return r;
}

static bly_ledger_msg_t *
s_block(bly_ledger_serve_t *self, const bly_ledger_msg_t *req)
{
    uint8_t *data = NULL, hash[32];
    size_t size;
    uint64_t h = bly_ledger_msg_height(req);
    if (bly_ledger_store_block(self->store, h, &data, &size, hash))
        return bly_ledger_serve_error(BLY_LEDGER_ERROR_NOT_FOUND, "no block at that height");
    bly_ledger_msg_t *r = bly_ledger_msg_new(BLY_LEDGER_MSG_BLOCK_REPLY);
    bly_assert(r);
    bly_ledger_msg_set_height(r, h);
    bly_assert(bly_ledger_msg_set_block_hash(r, hash, 32) == 0);
    bly_assert(bly_ledger_msg_set_data(r, data, size) == 0);
    free(data);
    return r;
}

static bly_ledger_msg_t *
s_tx(bly_ledger_serve_t *self, const bly_ledger_msg_t *req)
{
    size_t size, hs;
    uint8_t *tx = NULL;
    uint64_t h;
    const uint8_t *hash = bly_ledger_msg_tx_hash(req, &hs);
    if (bly_ledger_store_tx(self->store, hash, &tx, &size, &h))
        return bly_ledger_serve_error(BLY_LEDGER_ERROR_NOT_FOUND, "no committed transaction with that hash");
    bly_ledger_msg_t *r = bly_ledger_msg_new(BLY_LEDGER_MSG_TX_REPLY);
    bly_assert(r && bly_ledger_msg_set_tx_hash(r, hash, 32) == 0);
    bly_ledger_msg_set_height(r, h);
    bly_assert(bly_ledger_msg_set_tx(r, tx, size) == 0);
    free(tx);
    return r;
}

static bly_ledger_msg_t *
s_pol(bly_ledger_serve_t *self)
{
    bly_ledger_msg_t *r = bly_ledger_msg_new(BLY_LEDGER_MSG_POL);
    bly_assert(r);
    for (size_t i = 0; i < bly_ledger_pol_count(self->ledger); i++) {
        const bly_ledger_pol_t *p = bly_ledger_pol_at(self->ledger, i);
        bly_ledger_pol_node_t n;
        memset(&n, 0, sizeof(n));
        memcpy(n.node, p->id, 32);
        memcpy(n.parent, p->parent, 32);
        memcpy(n.author, p->author, 32);
        n.kind = p->kind;
        n.layer = p->layer;
        n.version = p->version;
        n.accepted = p->accepted;
        n.height = p->height;
        bly_assert(bly_ledger_msg_nodes_append(r, &n) == 0);
    }
    return r;
}

static bly_ledger_msg_t *
s_proof(bly_ledger_serve_t *self, const bly_ledger_msg_t *req)
{
    size_t size;
    bly_ledger_proof_t p;
    if (bly_ledger_proof(self->ledger, bly_ledger_msg_key(req, &size), &p))
        return bly_ledger_serve_error(BLY_LEDGER_ERROR_NOT_FOUND, "no such account");
    bly_ledger_msg_t *r = bly_ledger_msg_new(BLY_LEDGER_MSG_PROOF);
    bly_assert(r && bly_ledger_msg_set_key(r, p.account.key, 32) == 0);
    bly_ledger_msg_set_balance(r, p.account.balance);
    bly_ledger_msg_set_nonce(r, p.account.nonce);
    bly_ledger_msg_set_stake(r, p.account.stake);
    bly_ledger_msg_set_leaf_index(r, p.leaf_index);
    bly_ledger_msg_set_leaf_count(r, p.leaf_count);
    for (size_t i = 0; i < p.path_count; i++) {
        bly_ledger_sibling_t s;
        memcpy(s.hash, p.path[i], 32);
        s.right = p.path_right[i];
        bly_assert(bly_ledger_msg_path_append(r, &s) == 0);
    }
    bly_assert(bly_ledger_msg_set_pol_root(r, p.pol_root, 32) == 0);
    bly_assert(bly_ledger_msg_set_extra_root(r, p.extra_root, 32) == 0);
    bly_assert(bly_ledger_msg_set_app_hash(r, p.app_hash, 32) == 0);
    bly_ledger_msg_set_height(r, p.height);
    return r;
}

static bly_ledger_msg_t *
s_dispatch(bly_ledger_serve_t *self, const bly_ledger_msg_t *req)
{
    switch (bly_ledger_msg_id(req)) {
    case BLY_LEDGER_MSG_SUBMIT:
        return self->submit(self->submit_self, req);
    case BLY_LEDGER_MSG_ACCOUNT_REQUEST:
        return s_account(self, req);
    case BLY_LEDGER_MSG_HEAD_REQUEST:
        return s_head(self);
    case BLY_LEDGER_MSG_BLOCK_REQUEST:
        return s_block(self, req);
    case BLY_LEDGER_MSG_TX_REQUEST:
        return s_tx(self, req);
    case BLY_LEDGER_MSG_POL_REQUEST:
        return s_pol(self);
    case BLY_LEDGER_MSG_PROOF_REQUEST:
        return s_proof(self, req);
    default:
        return bly_ledger_serve_error(BLY_LEDGER_ERROR_BAD_MESSAGE, "not a request the ledger serves");
    }
}

void
bly_ledger_serve_one(bly_ledger_serve_t *self, zsock_t *router)
{
    char err[256] = "";
    zframe_t *rid = NULL;
    bly_ledger_msg_t *req = bly_ledger_msg_recv_from(router, &rid, err, sizeof(err));
    bly_ledger_msg_t *reply = NULL;
    if (req) {
        reply = s_dispatch(self, req);
        bly_ledger_msg_set_routing_id(reply, bly_ledger_msg_routing_id(req));
    } else if (rid) {
        reply = bly_ledger_serve_error(BLY_LEDGER_ERROR_BAD_MESSAGE, err);
        bly_ledger_msg_set_routing_id(reply, rid);
    }
    if (reply && bly_ledger_msg_id(reply) == BLY_LEDGER_MSG_ERROR) {
        self->refused++;
        if (bly_ratelimit_allow(&self->log_limit, zclock_mono(), 10, 10000))
            bly_log_warn("%s: refused a request: %s (%" PRIu64 " refused)", self->name,
                         bly_ledger_msg_reason(reply), self->refused);
    } else if (reply) {
        self->handled++;
    }
    if (reply && bly_ledger_msg_send(reply, router) != 0)
        bly_log_debug("ledger: reply dropped (peer gone or queue full)");
    bly_ledger_msg_destroy(&reply);
    bly_ledger_msg_destroy(&req);
    zframe_destroy(&rid);
}

