"""Words for people: the chat command table and its commands (help, list, read, set, ...).

Plain text in, plain text out; hubd.xmpp carries it over chat, group chat and ad-hoc forms.
It may import hubd.events, hubd.core and hubd.errors.
"""
