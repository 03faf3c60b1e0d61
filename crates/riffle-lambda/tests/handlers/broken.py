"""A module that fails at import: awslambdaric reports an init error."""

raise RuntimeError("broken at import")


def handler(event, context):
    return event
