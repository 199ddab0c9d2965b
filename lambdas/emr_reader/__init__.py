"""Reads of Amazon EMR for the EMR workflow (DescribeCluster, DescribeStep, ListSteps, ListClusters)."""
