"""The command lines, the top layer: what both share (:mod:`.common`: exit statuses, flag parsers, argument groups,
one-line error handling), then one module per command: ``holocron-export`` (:mod:`.export`) and
``holocron-verify`` (:mod:`.verify`).
"""
