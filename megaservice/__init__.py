"""DAG orchestration of the model services (OPEA ServiceOrchestrator vocabulary, async underneath)."""
