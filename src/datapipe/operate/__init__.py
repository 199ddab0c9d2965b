"""Operating deployed workflows from the terminal: `datapipe ls`, `runs`, `status`, `follow`, `stop`, `rerun`, `logs`.

- `history`: what an execution's history says (which state failed, with which error, and what each task ran);
- `runs`: finding workflows and runs, listing them, stopping and rerunning;
- `logs`: where the logs of a state are (task runner attempt, EMR step, Batch job, Lambda) and reading them;
- `cli`: the click commands.
"""
