"""Clients of the outside systems the fleet does not own.

The payment provider (and the signatures of its webhooks) and the mail relay, with the emails
sent through it.
"""
