"""Python Lambda handlers, written as for AWS and run unmodified through
PyPI's awslambdaric (the tests start them as `[functions]` commands)."""

import os
import time

LAMBDA_ENV = [
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_LAMBDA_RUNTIME_API",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_EXECUTION_ENV",
    "LAMBDA_TASK_ROOT",
    "TZ",
    "_HANDLER",
    "GREETING",
    "CARGO_PKG_NAME",
]


def echo(event, context):
    """Returns the event and what the function was told about itself."""
    return {
        "event": event,
        "pid": os.getpid(),
        "request_id": context.aws_request_id,
        "invoked_function_arn": context.invoked_function_arn,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "env": {name: os.environ.get(name) for name in LAMBDA_ENV},
    }


def behave(event, context):
    """Does what the event asks: fail, sleep, exit, print, or answer."""
    action = event.get("action")
    if action == "raise":
        raise ValueError("the event asked for an error")
    if action == "sleep":
        time.sleep(event["seconds"])
    if action == "exit":
        os._exit(1)
    if action == "print":
        print("a line for Riffle's log", flush=True)
    if action == "big":
        return "x" * event["bytes"]
    return {"pid": os.getpid(), "action": action}
