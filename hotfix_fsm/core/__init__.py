"""The pure core: the state graph, outcomes, monitor analysis, validation, redaction.

Nothing here performs I/O or imports another hotfix_fsm package except ``errors``.
"""
