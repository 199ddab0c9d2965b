"""CDK stacks and the constructs they compose, one construct per capability."""
