
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'orch' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'orch'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'orch' {
            [CompletionResult]::new('--db', '--db', [CompletionResultType]::ParameterName, 'The SQLite database [env: ORCH_DB] [default: $XDG_STATE_HOME/orch/orch.db]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'The TOML configuration file [env: ORCH_CONFIG] [default: $XDG_CONFIG_HOME/orch/config.toml]')
            [CompletionResult]::new('--set', '--set', [CompletionResultType]::ParameterName, 'Override a setting for this invocation, e.g. `--set lease_seconds=60` (not for secrets)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to colour human output [env: ORCH_COLOR]')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout instead of text for people')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('enqueue', 'enqueue', [CompletionResultType]::ParameterValue, 'Create a task and queue the job for its first stage (or --stage)')
            [CompletionResult]::new('claim', 'claim', [CompletionResultType]::ParameterValue, 'Atomically take the next eligible job and lease it to a worker')
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'Counts by state and stage, running jobs and their leases, the next retries')
            [CompletionResult]::new('show', 'show', [CompletionResultType]::ParameterValue, 'One job: its task, history and runs')
            [CompletionResult]::new('run', 'run', [CompletionResultType]::ParameterValue, 'Launch the agent for a claimed job, capture its log and keep its lease until it ends')
            [CompletionResult]::new('finalize', 'finalize', [CompletionResultType]::ParameterValue, 'Judge a job''s run and move the job on: next stage, retry, failed or gated (exit 0/20/21/22)')
            [CompletionResult]::new('cancel', 'cancel', [CompletionResultType]::ParameterValue, 'Cancel a queued or running job')
            [CompletionResult]::new('retry', 'retry', [CompletionResultType]::ParameterValue, 'Put a failed or cancelled job back in the queue with its attempts reset (--stage: at that stage)')
            [CompletionResult]::new('config', 'config', [CompletionResultType]::ParameterValue, 'Print the effective configuration and where each value came from')
            [CompletionResult]::new('tick', 'tick', [CompletionResultType]::ParameterValue, 'The whole step for cron: notify, recover, preflight, claim, run, finalize (up to --max-jobs)')
            [CompletionResult]::new('demo', 'demo', [CompletionResultType]::ParameterValue, 'Walk one task through the pipeline with a stand-in agent, in a directory of its own')
            [CompletionResult]::new('validate-log', 'validate-log', [CompletionResultType]::ParameterValue, 'Judge a run''s log: did the agent really succeed? (exit 0 ok, 20 retry, 21 failed, 22 auth)')
            [CompletionResult]::new('preflight', 'preflight', [CompletionResultType]::ParameterValue, 'Check the agent can take a job: its binary answers --version and it is logged in')
            [CompletionResult]::new('reset-cache', 'reset-cache', [CompletionResultType]::ParameterValue, 'Drop cached preflight verdicts and release auth gates (--breaker: close circuit breakers)')
            [CompletionResult]::new('notify', 'notify', [CompletionResultType]::ParameterValue, 'Deliver the outbox: Telegram alerts and forge usage comments that are due')
            [CompletionResult]::new('logs', 'logs', [CompletionResultType]::ParameterValue, 'Render a run''s stream-json log for a person: text, tool calls, results, verdict and usage')
            [CompletionResult]::new('metrics', 'metrics', [CompletionResultType]::ParameterValue, 'Print Prometheus metrics (text exposition 0.0.4), or write them atomically with --out')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a shell completion script, or write every shell''s into --dir')
            [CompletionResult]::new('man', 'man', [CompletionResultType]::ParameterValue, 'Write the manual pages (orch.1 and one per subcommand) into a directory')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'orch;enqueue' {
            [CompletionResult]::new('--project', '--project', [CompletionResultType]::ParameterName, 'Project name, as in the configuration''s [projects.NAME]')
            [CompletionResult]::new('--task', '--task', [CompletionResultType]::ParameterName, 'Task key, e.g. ORCH-044')
            [CompletionResult]::new('--title', '--title', [CompletionResultType]::ParameterName, 'Task title')
            [CompletionResult]::new('--body-file', '--body-file', [CompletionResultType]::ParameterName, 'Read the task body from this file, or `-` for standard input')
            [CompletionResult]::new('--issue', '--issue', [CompletionResultType]::ParameterName, 'The task''s issue number on the project''s forge (for usage comments)')
            [CompletionResult]::new('--stage', '--stage', [CompletionResultType]::ParameterName, 'Start at this pipeline stage instead of the first')
            [CompletionResult]::new('--priority', '--priority', [CompletionResultType]::ParameterName, 'Higher runs sooner; 0 to 1000 [default: the project''s priority]')
            [CompletionResult]::new('--db', '--db', [CompletionResultType]::ParameterName, 'The SQLite database [env: ORCH_DB] [default: $XDG_STATE_HOME/orch/orch.db]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'The TOML configuration file [env: ORCH_CONFIG] [default: $XDG_CONFIG_HOME/orch/config.toml]')
            [CompletionResult]::new('--set', '--set', [CompletionResultType]::ParameterName, 'Override a setting for this invocation, e.g. `--set lease_seconds=60` (not for secrets)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to colour human output [env: ORCH_COLOR]')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout instead of text for people')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'orch;claim' {
            [CompletionResult]::new('--worker', '--worker', [CompletionResultType]::ParameterName, 'Worker name that will hold the lease (e.g. the host name)')
            [CompletionResult]::new('--project', '--project', [CompletionResultType]::ParameterName, 'Only claim jobs of this project')
            [CompletionResult]::new('--agent', '--agent', [CompletionResultType]::ParameterName, 'The agent that will run the job; its preflight must pass before anything is claimed')
            [CompletionResult]::new('--db', '--db', [CompletionResultType]::ParameterName, 'The SQLite database [env: ORCH_DB] [default: $XDG_STATE_HOME/orch/orch.db]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'The TOML configuration file [env: ORCH_CONFIG] [default: $XDG_CONFIG_HOME/orch/config.toml]')
            [CompletionResult]::new('--set', '--set', [CompletionResultType]::ParameterName, 'Override a setting for this invocation, e.g. `--set lease_seconds=60` (not for secrets)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to colour human output [env: ORCH_COLOR]')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout instead of text for people')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'orch;status' {
            [CompletionResult]::new('--db', '--db', [CompletionResultType]::ParameterName, 'The SQLite database [env: ORCH_DB] [default: $XDG_STATE_HOME/orch/orch.db]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'The TOML configuration file [env: ORCH_CONFIG] [default: $XDG_CONFIG_HOME/orch/config.toml]')
            [CompletionResult]::new('--set', '--set', [CompletionResultType]::ParameterName, 'Override a setting for this invocation, e.g. `--set lease_seconds=60` (not for secrets)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to colour human output [env: ORCH_COLOR]')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout instead of text for people')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'orch;show' {
            [CompletionResult]::new('--db', '--db', [CompletionResultType]::ParameterName, 'The SQLite database [env: ORCH_DB] [default: $XDG_STATE_HOME/orch/orch.db]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'The TOML configuration file [env: ORCH_CONFIG] [default: $XDG_CONFIG_HOME/orch/config.toml]')
            [CompletionResult]::new('--set', '--set', [CompletionResultType]::ParameterName, 'Override a setting for this invocation, e.g. `--set lease_seconds=60` (not for secrets)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to colour human output [env: ORCH_COLOR]')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout instead of text for people')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'orch;run' {
            [CompletionResult]::new('--worker', '--worker', [CompletionResultType]::ParameterName, 'The worker holding the job''s lease')
            [CompletionResult]::new('--agent', '--agent', [CompletionResultType]::ParameterName, 'Agent profile, as in the configuration''s [agents.NAME]')
            [CompletionResult]::new('--db', '--db', [CompletionResultType]::ParameterName, 'The SQLite database [env: ORCH_DB] [default: $XDG_STATE_HOME/orch/orch.db]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'The TOML configuration file [env: ORCH_CONFIG] [default: $XDG_CONFIG_HOME/orch/config.toml]')
            [CompletionResult]::new('--set', '--set', [CompletionResultType]::ParameterName, 'Override a setting for this invocation, e.g. `--set lease_seconds=60` (not for secrets)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to colour human output [env: ORCH_COLOR]')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout instead of text for people')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'orch;finalize' {
            [CompletionResult]::new('--run', '--run', [CompletionResultType]::ParameterName, 'This run of the job instead of its latest')
            [CompletionResult]::new('--db', '--db', [CompletionResultType]::ParameterName, 'The SQLite database [env: ORCH_DB] [default: $XDG_STATE_HOME/orch/orch.db]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'The TOML configuration file [env: ORCH_CONFIG] [default: $XDG_CONFIG_HOME/orch/config.toml]')
            [CompletionResult]::new('--set', '--set', [CompletionResultType]::ParameterName, 'Override a setting for this invocation, e.g. `--set lease_seconds=60` (not for secrets)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to colour human output [env: ORCH_COLOR]')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout instead of text for people')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'orch;cancel' {
            [CompletionResult]::new('--db', '--db', [CompletionResultType]::ParameterName, 'The SQLite database [env: ORCH_DB] [default: $XDG_STATE_HOME/orch/orch.db]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'The TOML configuration file [env: ORCH_CONFIG] [default: $XDG_CONFIG_HOME/orch/config.toml]')
            [CompletionResult]::new('--set', '--set', [CompletionResultType]::ParameterName, 'Override a setting for this invocation, e.g. `--set lease_seconds=60` (not for secrets)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to colour human output [env: ORCH_COLOR]')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout instead of text for people')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'orch;retry' {
            [CompletionResult]::new('--stage', '--stage', [CompletionResultType]::ParameterName, 'Queue it at this stage of the pipeline instead of its own; a queued job may be moved too (e.g. one at a stage the pipeline no longer has)')
            [CompletionResult]::new('--db', '--db', [CompletionResultType]::ParameterName, 'The SQLite database [env: ORCH_DB] [default: $XDG_STATE_HOME/orch/orch.db]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'The TOML configuration file [env: ORCH_CONFIG] [default: $XDG_CONFIG_HOME/orch/config.toml]')
            [CompletionResult]::new('--set', '--set', [CompletionResultType]::ParameterName, 'Override a setting for this invocation, e.g. `--set lease_seconds=60` (not for secrets)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to colour human output [env: ORCH_COLOR]')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout instead of text for people')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'orch;config' {
            [CompletionResult]::new('--db', '--db', [CompletionResultType]::ParameterName, 'The SQLite database [env: ORCH_DB] [default: $XDG_STATE_HOME/orch/orch.db]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'The TOML configuration file [env: ORCH_CONFIG] [default: $XDG_CONFIG_HOME/orch/config.toml]')
            [CompletionResult]::new('--set', '--set', [CompletionResultType]::ParameterName, 'Override a setting for this invocation, e.g. `--set lease_seconds=60` (not for secrets)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to colour human output [env: ORCH_COLOR]')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout instead of text for people')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'orch;tick' {
            [CompletionResult]::new('--worker', '--worker', [CompletionResultType]::ParameterName, 'Worker name that holds the leases (e.g. the host name); one tick per worker at a time')
            [CompletionResult]::new('--agent', '--agent', [CompletionResultType]::ParameterName, 'Agent profile, as in the configuration''s [agents.NAME]')
            [CompletionResult]::new('--project', '--project', [CompletionResultType]::ParameterName, 'Only claim jobs of this project')
            [CompletionResult]::new('--max-jobs', '--max-jobs', [CompletionResultType]::ParameterName, 'Jobs to do in this tick at most')
            [CompletionResult]::new('--db', '--db', [CompletionResultType]::ParameterName, 'The SQLite database [env: ORCH_DB] [default: $XDG_STATE_HOME/orch/orch.db]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'The TOML configuration file [env: ORCH_CONFIG] [default: $XDG_CONFIG_HOME/orch/config.toml]')
            [CompletionResult]::new('--set', '--set', [CompletionResultType]::ParameterName, 'Override a setting for this invocation, e.g. `--set lease_seconds=60` (not for secrets)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to colour human output [env: ORCH_COLOR]')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout instead of text for people')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'orch;demo' {
            [CompletionResult]::new('--dir', '--dir', [CompletionResultType]::ParameterName, 'Make the demo in this new or empty directory (kept) instead of a temporary one')
            [CompletionResult]::new('--db', '--db', [CompletionResultType]::ParameterName, 'The SQLite database [env: ORCH_DB] [default: $XDG_STATE_HOME/orch/orch.db]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'The TOML configuration file [env: ORCH_CONFIG] [default: $XDG_CONFIG_HOME/orch/config.toml]')
            [CompletionResult]::new('--set', '--set', [CompletionResultType]::ParameterName, 'Override a setting for this invocation, e.g. `--set lease_seconds=60` (not for secrets)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to colour human output [env: ORCH_COLOR]')
            [CompletionResult]::new('--keep', '--keep', [CompletionResultType]::ParameterName, 'Leave the demo''s directory (project, config, database, logs) to explore')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout instead of text for people')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'orch;validate-log' {
            [CompletionResult]::new('--exit-code', '--exit-code', [CompletionResultType]::ParameterName, 'The agent''s exit status: a success result with a non-zero status is `exit_mismatch`')
            [CompletionResult]::new('--db', '--db', [CompletionResultType]::ParameterName, 'The SQLite database [env: ORCH_DB] [default: $XDG_STATE_HOME/orch/orch.db]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'The TOML configuration file [env: ORCH_CONFIG] [default: $XDG_CONFIG_HOME/orch/config.toml]')
            [CompletionResult]::new('--set', '--set', [CompletionResultType]::ParameterName, 'Override a setting for this invocation, e.g. `--set lease_seconds=60` (not for secrets)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to colour human output [env: ORCH_COLOR]')
            [CompletionResult]::new('--timed-out', '--timed-out', [CompletionResultType]::ParameterName, 'The run was ended by its timeout: without a success result the class is `timeout`')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout instead of text for people')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'orch;preflight' {
            [CompletionResult]::new('--agent', '--agent', [CompletionResultType]::ParameterName, 'The agent to check (a [agents.NAME] profile, or claude)')
            [CompletionResult]::new('--db', '--db', [CompletionResultType]::ParameterName, 'The SQLite database [env: ORCH_DB] [default: $XDG_STATE_HOME/orch/orch.db]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'The TOML configuration file [env: ORCH_CONFIG] [default: $XDG_CONFIG_HOME/orch/config.toml]')
            [CompletionResult]::new('--set', '--set', [CompletionResultType]::ParameterName, 'Override a setting for this invocation, e.g. `--set lease_seconds=60` (not for secrets)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to colour human output [env: ORCH_COLOR]')
            [CompletionResult]::new('--explain', '--explain', [CompletionResultType]::ParameterName, 'Each check on its own line with its evidence and, for a failure, the fix')
            [CompletionResult]::new('--no-cache', '--no-cache', [CompletionResultType]::ParameterName, 'Evaluate afresh instead of serving the cached verdict (the result is cached)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout instead of text for people')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'orch;reset-cache' {
            [CompletionResult]::new('--agent', '--agent', [CompletionResultType]::ParameterName, 'Only this agent''s verdict, gate and breaker [default: every agent''s]')
            [CompletionResult]::new('--db', '--db', [CompletionResultType]::ParameterName, 'The SQLite database [env: ORCH_DB] [default: $XDG_STATE_HOME/orch/orch.db]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'The TOML configuration file [env: ORCH_CONFIG] [default: $XDG_CONFIG_HOME/orch/config.toml]')
            [CompletionResult]::new('--set', '--set', [CompletionResultType]::ParameterName, 'Override a setting for this invocation, e.g. `--set lease_seconds=60` (not for secrets)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to colour human output [env: ORCH_COLOR]')
            [CompletionResult]::new('--breaker', '--breaker', [CompletionResultType]::ParameterName, 'Also close the circuit breaker and forget its count of failures')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout instead of text for people')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'orch;notify' {
            [CompletionResult]::new('--db', '--db', [CompletionResultType]::ParameterName, 'The SQLite database [env: ORCH_DB] [default: $XDG_STATE_HOME/orch/orch.db]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'The TOML configuration file [env: ORCH_CONFIG] [default: $XDG_CONFIG_HOME/orch/config.toml]')
            [CompletionResult]::new('--set', '--set', [CompletionResultType]::ParameterName, 'Override a setting for this invocation, e.g. `--set lease_seconds=60` (not for secrets)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to colour human output [env: ORCH_COLOR]')
            [CompletionResult]::new('--retry-dead', '--retry-dead', [CompletionResultType]::ParameterName, 'Give dead messages (out of attempts) another round first')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout instead of text for people')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'orch;logs' {
            [CompletionResult]::new('--run', '--run', [CompletionResultType]::ParameterName, 'The run to show (the RUN column of `orch show JOB`) [default: the job''s latest run]')
            [CompletionResult]::new('--db', '--db', [CompletionResultType]::ParameterName, 'The SQLite database [env: ORCH_DB] [default: $XDG_STATE_HOME/orch/orch.db]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'The TOML configuration file [env: ORCH_CONFIG] [default: $XDG_CONFIG_HOME/orch/config.toml]')
            [CompletionResult]::new('--set', '--set', [CompletionResultType]::ParameterName, 'Override a setting for this invocation, e.g. `--set lease_seconds=60` (not for secrets)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to colour human output [env: ORCH_COLOR]')
            [CompletionResult]::new('--raw', '--raw', [CompletionResultType]::ParameterName, 'Print the log exactly as stored')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout instead of text for people')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'orch;metrics' {
            [CompletionResult]::new('--out', '--out', [CompletionResultType]::ParameterName, 'Write the metrics to FILE (atomically: a temporary file beside it, then a rename) instead of standard output')
            [CompletionResult]::new('--db', '--db', [CompletionResultType]::ParameterName, 'The SQLite database [env: ORCH_DB] [default: $XDG_STATE_HOME/orch/orch.db]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'The TOML configuration file [env: ORCH_CONFIG] [default: $XDG_CONFIG_HOME/orch/config.toml]')
            [CompletionResult]::new('--set', '--set', [CompletionResultType]::ParameterName, 'Override a setting for this invocation, e.g. `--set lease_seconds=60` (not for secrets)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to colour human output [env: ORCH_COLOR]')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout instead of text for people')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'orch;completions' {
            [CompletionResult]::new('--dir', '--dir', [CompletionResultType]::ParameterName, 'Write the scripts into this directory under their usual names (every shell, or SHELL''s)')
            [CompletionResult]::new('--db', '--db', [CompletionResultType]::ParameterName, 'The SQLite database [env: ORCH_DB] [default: $XDG_STATE_HOME/orch/orch.db]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'The TOML configuration file [env: ORCH_CONFIG] [default: $XDG_CONFIG_HOME/orch/config.toml]')
            [CompletionResult]::new('--set', '--set', [CompletionResultType]::ParameterName, 'Override a setting for this invocation, e.g. `--set lease_seconds=60` (not for secrets)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to colour human output [env: ORCH_COLOR]')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout instead of text for people')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'orch;man' {
            [CompletionResult]::new('--dir', '--dir', [CompletionResultType]::ParameterName, 'Directory the pages are written into (created if missing)')
            [CompletionResult]::new('--db', '--db', [CompletionResultType]::ParameterName, 'The SQLite database [env: ORCH_DB] [default: $XDG_STATE_HOME/orch/orch.db]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'The TOML configuration file [env: ORCH_CONFIG] [default: $XDG_CONFIG_HOME/orch/config.toml]')
            [CompletionResult]::new('--set', '--set', [CompletionResultType]::ParameterName, 'Override a setting for this invocation, e.g. `--set lease_seconds=60` (not for secrets)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to colour human output [env: ORCH_COLOR]')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout instead of text for people')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'orch;help' {
            [CompletionResult]::new('enqueue', 'enqueue', [CompletionResultType]::ParameterValue, 'Create a task and queue the job for its first stage (or --stage)')
            [CompletionResult]::new('claim', 'claim', [CompletionResultType]::ParameterValue, 'Atomically take the next eligible job and lease it to a worker')
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'Counts by state and stage, running jobs and their leases, the next retries')
            [CompletionResult]::new('show', 'show', [CompletionResultType]::ParameterValue, 'One job: its task, history and runs')
            [CompletionResult]::new('run', 'run', [CompletionResultType]::ParameterValue, 'Launch the agent for a claimed job, capture its log and keep its lease until it ends')
            [CompletionResult]::new('finalize', 'finalize', [CompletionResultType]::ParameterValue, 'Judge a job''s run and move the job on: next stage, retry, failed or gated (exit 0/20/21/22)')
            [CompletionResult]::new('cancel', 'cancel', [CompletionResultType]::ParameterValue, 'Cancel a queued or running job')
            [CompletionResult]::new('retry', 'retry', [CompletionResultType]::ParameterValue, 'Put a failed or cancelled job back in the queue with its attempts reset (--stage: at that stage)')
            [CompletionResult]::new('config', 'config', [CompletionResultType]::ParameterValue, 'Print the effective configuration and where each value came from')
            [CompletionResult]::new('tick', 'tick', [CompletionResultType]::ParameterValue, 'The whole step for cron: notify, recover, preflight, claim, run, finalize (up to --max-jobs)')
            [CompletionResult]::new('demo', 'demo', [CompletionResultType]::ParameterValue, 'Walk one task through the pipeline with a stand-in agent, in a directory of its own')
            [CompletionResult]::new('validate-log', 'validate-log', [CompletionResultType]::ParameterValue, 'Judge a run''s log: did the agent really succeed? (exit 0 ok, 20 retry, 21 failed, 22 auth)')
            [CompletionResult]::new('preflight', 'preflight', [CompletionResultType]::ParameterValue, 'Check the agent can take a job: its binary answers --version and it is logged in')
            [CompletionResult]::new('reset-cache', 'reset-cache', [CompletionResultType]::ParameterValue, 'Drop cached preflight verdicts and release auth gates (--breaker: close circuit breakers)')
            [CompletionResult]::new('notify', 'notify', [CompletionResultType]::ParameterValue, 'Deliver the outbox: Telegram alerts and forge usage comments that are due')
            [CompletionResult]::new('logs', 'logs', [CompletionResultType]::ParameterValue, 'Render a run''s stream-json log for a person: text, tool calls, results, verdict and usage')
            [CompletionResult]::new('metrics', 'metrics', [CompletionResultType]::ParameterValue, 'Print Prometheus metrics (text exposition 0.0.4), or write them atomically with --out')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a shell completion script, or write every shell''s into --dir')
            [CompletionResult]::new('man', 'man', [CompletionResultType]::ParameterValue, 'Write the manual pages (orch.1 and one per subcommand) into a directory')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'orch;help;enqueue' {
            break
        }
        'orch;help;claim' {
            break
        }
        'orch;help;status' {
            break
        }
        'orch;help;show' {
            break
        }
        'orch;help;run' {
            break
        }
        'orch;help;finalize' {
            break
        }
        'orch;help;cancel' {
            break
        }
        'orch;help;retry' {
            break
        }
        'orch;help;config' {
            break
        }
        'orch;help;tick' {
            break
        }
        'orch;help;demo' {
            break
        }
        'orch;help;validate-log' {
            break
        }
        'orch;help;preflight' {
            break
        }
        'orch;help;reset-cache' {
            break
        }
        'orch;help;notify' {
            break
        }
        'orch;help;logs' {
            break
        }
        'orch;help;metrics' {
            break
        }
        'orch;help;completions' {
            break
        }
        'orch;help;man' {
            break
        }
        'orch;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
