/*  =========================================================================
    bly_ledger_serve - answer `ledger` protocol requests from a ledger and its
    LMDB store (shared by the ledger actor and the consensus actor)
    ========================================================================= */

#ifndef BLY_LEDGER_SERVE_H_INCLUDED
#define BLY_LEDGER_SERVE_H_INCLUDED

#include "bly_ledger.h"
#include "bly_ledger_store.h"

#include <czmq.h>

//  Handle a submission: return the reply (SUBMIT_OK or ERROR), never NULL.
typedef bly_ledger_msg_t *(bly_ledger_submit_fn)(void *self, const bly_ledger_msg_t *req);

typedef struct {
    const char *name;                //  Actor name for log lines.
    bly_ledger_store_t *store;       //  Borrowed: blocks and transactions by hash.
    bly_ledger_t *ledger;            //  Borrowed: the committed state.
    bly_ledger_submit_fn *submit;    //  Submissions go here.
    void *submit_self;
    uint64_t handled, refused;       //  Counters.
    bly_ratelimit_t log_limit;       //  Refusal log lines.
} bly_ledger_serve_t;

//  An ERROR reply with `code` and `reason` (truncated to the schema's bound).
bly_ledger_msg_t *bly_ledger_serve_error(int code, const char *reason);

//  Receive one request from `router` and send its reply. A malformed frame
//  is answered with an error; nothing here can crash on peer data.
void bly_ledger_serve_one(bly_ledger_serve_t *self, zsock_t *router);

#endif
