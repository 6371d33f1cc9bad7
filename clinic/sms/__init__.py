"""SMS informing: templates, the message ledger, single sends, group mailings, delivery.

Modules: ``templating`` (safe placeholders), ``rules`` (stop list, consent, quiet hours,
ttl), ``ledger`` (queueing and dispatching messages: the row first, then the request),
``templates`` (the «Шаблоны для отправки СМС» service), ``mailings`` («Рассылка СМС»),
``delivery`` (callbacks, status polling, stale claims), ``gateway`` (the sms.ru client
built from the clinic's settings), ``jobs`` (worker jobs). See docs/sms.md.
"""
