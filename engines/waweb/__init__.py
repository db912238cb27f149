"""The ``waweb`` engine: real WhatsApp accounts as linked devices, through whatsmeow
(the ``neonize`` binding), one supervised child process per account.

Only the child process (``manage.py wa_session``) imports neonize; web and worker
processes reach it through the command channel (``engines.channel``)."""
