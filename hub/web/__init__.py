"""Web pages: public company status look-ups, the MID helper and the customs-IT dashboard.

Server-rendered Jinja with one small stylesheet shipped in the package; no script is
needed anywhere (charts are inline SVG): the company page's copy buttons are a small
script of the hub's own that only adds them. `routes.init_app` registers the two blueprints, an HTML
404 page for addresses outside the API, and security headers on every page.
"""
