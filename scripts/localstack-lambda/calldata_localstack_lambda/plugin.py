"""Registers the executor in LocalStack's `localstack.lambda.runtime_executor` plugin namespace.

Selected with LAMBDA_RUNTIME_EXECUTOR=calldata-local (an unknown name makes LocalStack fall back to docker).
"""
from localstack.services.lambda_.invocation.plugins import RuntimeExecutorPlugin


class LocalProcessRuntimeExecutorPlugin(RuntimeExecutorPlugin):
    name = "calldata-local"

    def load(self, *args, **kwargs):
        from calldata_localstack_lambda.executor import LocalProcessRuntimeExecutor

        return LocalProcessRuntimeExecutor
