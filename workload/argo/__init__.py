"""Argo Workflows definitions of the workload tree, built with Hera."""
