// Node.js Lambda handlers, written as for AWS and run unmodified through npm's
// aws-lambda-ric (the tests start them as `[functions]` commands).

export const echo = async (event, context) => ({
  event,
  pid: process.pid,
  request_id: context.awsRequestId,
  invoked_function_arn: context.invokedFunctionArn,
  remaining_ms: context.getRemainingTimeInMillis(),
  function_name: process.env.AWS_LAMBDA_FUNCTION_NAME,
});

export const behave = async (event) => {
  if (event.action === "throw") {
    throw new TypeError("the event asked for an error");
  }
  if (event.action === "exit") {
    process.exit(3);
  }
  if (event.action === "sleep") {
    await new Promise((resolve) => setTimeout(resolve, event.seconds * 1000));
  }
  return { done: event.action ?? null, pid: process.pid };
};
