"""How every synthesis of the project runs (`cdk synth`, `datapipe synth`, the tests' and the benchmarks').

A module of its own, importing nothing, so that the benchmark's empty CDK app can take the same setting without
importing the stacks.
"""

from __future__ import annotations

# The CDK's built-in CloudFormation validation is off: cfn-lint and checkov check every synthesized template in the
# test suite instead (docs/decisions/0001-builtin-cloudformation-validation-off.md).
BUILTIN_CLOUDFORMATION_VALIDATION = False
