"""Telling people where they work: Slack threads, Teams cards, signed webhooks.

    events    what happened to an investigation (started, paused at a gate, gate
              resolved, escalated, ended), as one typed event
    watch     turns the durable records into events, once each (state kept in SQL)
    hub       routes each event to the service's channels, with a default
    slack     a thread per investigation, Approve/Deny buttons, messages updated
    teams     Adaptive Cards to an incoming webhook
    webhook   JSON, HMAC-signed, to any receiver

Nothing here decides a gate: Slack's buttons end in ``rootloop.approvals.decide``
like every other surface (see ``rootloop.serve.slack_actions``).
"""
