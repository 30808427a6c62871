"""The web UI: server-rendered pages over the same services and role scoping as the API.

Mounted by :func:`callvault.web.app.create_app` on the API's own application
(same port): sign-in, search, the recording page with its player, live calls,
the audit trail and administration. Templates are Jinja2; the few scripts and
the style sheet are plain files under ``static/`` served by callvault itself,
so nothing is built or fetched from elsewhere.
"""
