
use builtin;
use str;

set edit:completion:arg-completer[orch] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'orch'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'orch'= {
            cand --db 'The SQLite database [env: ORCH_DB] [default: $XDG_STATE_HOME/orch/orch.db]'
            cand --config 'The TOML configuration file [env: ORCH_CONFIG] [default: $XDG_CONFIG_HOME/orch/config.toml]'
            cand --set 'Override a setting for this invocation, e.g. `--set lease_seconds=60` (not for secrets)'
            cand --color 'When to colour human output [env: ORCH_COLOR]'
            cand --json 'Print one JSON document on stdout instead of text for people'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
            cand enqueue 'Create a task and queue the job for its first stage (or --stage)'
            cand claim 'Atomically take the next eligible job and lease it to a worker'
            cand status 'Counts by state and stage, running jobs and their leases, the next retries'
            cand show 'One job: its task, history and runs'
            cand run 'Launch the agent for a claimed job, capture its log and keep its lease until it ends'
            cand finalize 'Judge a job''s run and move the job on: next stage, retry, failed or gated (exit 0/20/21/22)'
            cand cancel 'Cancel a queued or running job'
            cand retry 'Put a failed or cancelled job back in the queue with its attempts reset (--stage: at that stage)'
            cand config 'Print the effective configuration and where each value came from'
            cand tick 'The whole step for cron: notify, recover, preflight, claim, run, finalize (up to --max-jobs)'
            cand demo 'Walk one task through the pipeline with a stand-in agent, in a directory of its own'
            cand validate-log 'Judge a run''s log: did the agent really succeed? (exit 0 ok, 20 retry, 21 failed, 22 auth)'
            cand preflight 'Check the agent can take a job: its binary answers --version and it is logged in'
            cand reset-cache 'Drop cached preflight verdicts and release auth gates (--breaker: close circuit breakers)'
            cand notify 'Deliver the outbox: Telegram alerts and forge usage comments that are due'
            cand logs 'Render a run''s stream-json log for a person: text, tool calls, results, verdict and usage'
            cand metrics 'Print Prometheus metrics (text exposition 0.0.4), or write them atomically with --out'
            cand completions 'Print a shell completion script, or write every shell''s into --dir'
            cand man 'Write the manual pages (orch.1 and one per subcommand) into a directory'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'orch;enqueue'= {
            cand --project 'Project name, as in the configuration''s [projects.NAME]'
            cand --task 'Task key, e.g. ORCH-044'
            cand --title 'Task title'
            cand --body-file 'Read the task body from this file, or `-` for standard input'
            cand --issue 'The task''s issue number on the project''s forge (for usage comments)'
            cand --stage 'Start at this pipeline stage instead of the first'
            cand --priority 'Higher runs sooner; 0 to 1000 [default: the project''s priority]'
            cand --db 'The SQLite database [env: ORCH_DB] [default: $XDG_STATE_HOME/orch/orch.db]'
            cand --config 'The TOML configuration file [env: ORCH_CONFIG] [default: $XDG_CONFIG_HOME/orch/config.toml]'
            cand --set 'Override a setting for this invocation, e.g. `--set lease_seconds=60` (not for secrets)'
            cand --color 'When to colour human output [env: ORCH_COLOR]'
            cand --json 'Print one JSON document on stdout instead of text for people'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'orch;claim'= {
            cand --worker 'Worker name that will hold the lease (e.g. the host name)'
            cand --project 'Only claim jobs of this project'
            cand --agent 'The agent that will run the job; its preflight must pass before anything is claimed'
            cand --db 'The SQLite database [env: ORCH_DB] [default: $XDG_STATE_HOME/orch/orch.db]'
            cand --config 'The TOML configuration file [env: ORCH_CONFIG] [default: $XDG_CONFIG_HOME/orch/config.toml]'
            cand --set 'Override a setting for this invocation, e.g. `--set lease_seconds=60` (not for secrets)'
            cand --color 'When to colour human output [env: ORCH_COLOR]'
            cand --json 'Print one JSON document on stdout instead of text for people'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'orch;status'= {
            cand --db 'The SQLite database [env: ORCH_DB] [default: $XDG_STATE_HOME/orch/orch.db]'
            cand --config 'The TOML configuration file [env: ORCH_CONFIG] [default: $XDG_CONFIG_HOME/orch/config.toml]'
            cand --set 'Override a setting for this invocation, e.g. `--set lease_seconds=60` (not for secrets)'
            cand --color 'When to colour human output [env: ORCH_COLOR]'
            cand --json 'Print one JSON document on stdout instead of text for people'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'orch;show'= {
            cand --db 'The SQLite database [env: ORCH_DB] [default: $XDG_STATE_HOME/orch/orch.db]'
            cand --config 'The TOML configuration file [env: ORCH_CONFIG] [default: $XDG_CONFIG_HOME/orch/config.toml]'
            cand --set 'Override a setting for this invocation, e.g. `--set lease_seconds=60` (not for secrets)'
            cand --color 'When to colour human output [env: ORCH_COLOR]'
            cand --json 'Print one JSON document on stdout instead of text for people'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'orch;run'= {
            cand --worker 'The worker holding the job''s lease'
            cand --agent 'Agent profile, as in the configuration''s [agents.NAME]'
            cand --db 'The SQLite database [env: ORCH_DB] [default: $XDG_STATE_HOME/orch/orch.db]'
            cand --config 'The TOML configuration file [env: ORCH_CONFIG] [default: $XDG_CONFIG_HOME/orch/config.toml]'
            cand --set 'Override a setting for this invocation, e.g. `--set lease_seconds=60` (not for secrets)'
            cand --color 'When to colour human output [env: ORCH_COLOR]'
            cand --json 'Print one JSON document on stdout instead of text for people'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'orch;finalize'= {
            cand --run 'This run of the job instead of its latest'
            cand --db 'The SQLite database [env: ORCH_DB] [default: $XDG_STATE_HOME/orch/orch.db]'
            cand --config 'The TOML configuration file [env: ORCH_CONFIG] [default: $XDG_CONFIG_HOME/orch/config.toml]'
            cand --set 'Override a setting for this invocation, e.g. `--set lease_seconds=60` (not for secrets)'
            cand --color 'When to colour human output [env: ORCH_COLOR]'
            cand --json 'Print one JSON document on stdout instead of text for people'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'orch;cancel'= {
            cand --db 'The SQLite database [env: ORCH_DB] [default: $XDG_STATE_HOME/orch/orch.db]'
            cand --config 'The TOML configuration file [env: ORCH_CONFIG] [default: $XDG_CONFIG_HOME/orch/config.toml]'
            cand --set 'Override a setting for this invocation, e.g. `--set lease_seconds=60` (not for secrets)'
            cand --color 'When to colour human output [env: ORCH_COLOR]'
            cand --json 'Print one JSON document on stdout instead of text for people'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'orch;retry'= {
            cand --stage 'Queue it at this stage of the pipeline instead of its own; a queued job may be moved too (e.g. one at a stage the pipeline no longer has)'
            cand --db 'The SQLite database [env: ORCH_DB] [default: $XDG_STATE_HOME/orch/orch.db]'
            cand --config 'The TOML configuration file [env: ORCH_CONFIG] [default: $XDG_CONFIG_HOME/orch/config.toml]'
            cand --set 'Override a setting for this invocation, e.g. `--set lease_seconds=60` (not for secrets)'
            cand --color 'When to colour human output [env: ORCH_COLOR]'
            cand --json 'Print one JSON document on stdout instead of text for people'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'orch;config'= {
            cand --db 'The SQLite database [env: ORCH_DB] [default: $XDG_STATE_HOME/orch/orch.db]'
            cand --config 'The TOML configuration file [env: ORCH_CONFIG] [default: $XDG_CONFIG_HOME/orch/config.toml]'
            cand --set 'Override a setting for this invocation, e.g. `--set lease_seconds=60` (not for secrets)'
            cand --color 'When to colour human output [env: ORCH_COLOR]'
            cand --json 'Print one JSON document on stdout instead of text for people'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'orch;tick'= {
            cand --worker 'Worker name that holds the leases (e.g. the host name); one tick per worker at a time'
            cand --agent 'Agent profile, as in the configuration''s [agents.NAME]'
            cand --project 'Only claim jobs of this project'
            cand --max-jobs 'Jobs to do in this tick at most'
            cand --db 'The SQLite database [env: ORCH_DB] [default: $XDG_STATE_HOME/orch/orch.db]'
            cand --config 'The TOML configuration file [env: ORCH_CONFIG] [default: $XDG_CONFIG_HOME/orch/config.toml]'
            cand --set 'Override a setting for this invocation, e.g. `--set lease_seconds=60` (not for secrets)'
            cand --color 'When to colour human output [env: ORCH_COLOR]'
            cand --json 'Print one JSON document on stdout instead of text for people'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'orch;demo'= {
            cand --dir 'Make the demo in this new or empty directory (kept) instead of a temporary one'
            cand --db 'The SQLite database [env: ORCH_DB] [default: $XDG_STATE_HOME/orch/orch.db]'
            cand --config 'The TOML configuration file [env: ORCH_CONFIG] [default: $XDG_CONFIG_HOME/orch/config.toml]'
            cand --set 'Override a setting for this invocation, e.g. `--set lease_seconds=60` (not for secrets)'
            cand --color 'When to colour human output [env: ORCH_COLOR]'
            cand --keep 'Leave the demo''s directory (project, config, database, logs) to explore'
            cand --json 'Print one JSON document on stdout instead of text for people'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'orch;validate-log'= {
            cand --exit-code 'The agent''s exit status: a success result with a non-zero status is `exit_mismatch`'
            cand --db 'The SQLite database [env: ORCH_DB] [default: $XDG_STATE_HOME/orch/orch.db]'
            cand --config 'The TOML configuration file [env: ORCH_CONFIG] [default: $XDG_CONFIG_HOME/orch/config.toml]'
            cand --set 'Override a setting for this invocation, e.g. `--set lease_seconds=60` (not for secrets)'
            cand --color 'When to colour human output [env: ORCH_COLOR]'
            cand --timed-out 'The run was ended by its timeout: without a success result the class is `timeout`'
            cand --json 'Print one JSON document on stdout instead of text for people'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'orch;preflight'= {
            cand --agent 'The agent to check (a [agents.NAME] profile, or claude)'
            cand --db 'The SQLite database [env: ORCH_DB] [default: $XDG_STATE_HOME/orch/orch.db]'
            cand --config 'The TOML configuration file [env: ORCH_CONFIG] [default: $XDG_CONFIG_HOME/orch/config.toml]'
            cand --set 'Override a setting for this invocation, e.g. `--set lease_seconds=60` (not for secrets)'
            cand --color 'When to colour human output [env: ORCH_COLOR]'
            cand --explain 'Each check on its own line with its evidence and, for a failure, the fix'
            cand --no-cache 'Evaluate afresh instead of serving the cached verdict (the result is cached)'
            cand --json 'Print one JSON document on stdout instead of text for people'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'orch;reset-cache'= {
            cand --agent 'Only this agent''s verdict, gate and breaker [default: every agent''s]'
            cand --db 'The SQLite database [env: ORCH_DB] [default: $XDG_STATE_HOME/orch/orch.db]'
            cand --config 'The TOML configuration file [env: ORCH_CONFIG] [default: $XDG_CONFIG_HOME/orch/config.toml]'
            cand --set 'Override a setting for this invocation, e.g. `--set lease_seconds=60` (not for secrets)'
            cand --color 'When to colour human output [env: ORCH_COLOR]'
            cand --breaker 'Also close the circuit breaker and forget its count of failures'
            cand --json 'Print one JSON document on stdout instead of text for people'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'orch;notify'= {
            cand --db 'The SQLite database [env: ORCH_DB] [default: $XDG_STATE_HOME/orch/orch.db]'
            cand --config 'The TOML configuration file [env: ORCH_CONFIG] [default: $XDG_CONFIG_HOME/orch/config.toml]'
            cand --set 'Override a setting for this invocation, e.g. `--set lease_seconds=60` (not for secrets)'
            cand --color 'When to colour human output [env: ORCH_COLOR]'
            cand --retry-dead 'Give dead messages (out of attempts) another round first'
            cand --json 'Print one JSON document on stdout instead of text for people'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'orch;logs'= {
            cand --run 'The run to show (the RUN column of `orch show JOB`) [default: the job''s latest run]'
            cand --db 'The SQLite database [env: ORCH_DB] [default: $XDG_STATE_HOME/orch/orch.db]'
            cand --config 'The TOML configuration file [env: ORCH_CONFIG] [default: $XDG_CONFIG_HOME/orch/config.toml]'
            cand --set 'Override a setting for this invocation, e.g. `--set lease_seconds=60` (not for secrets)'
            cand --color 'When to colour human output [env: ORCH_COLOR]'
            cand --raw 'Print the log exactly as stored'
            cand --json 'Print one JSON document on stdout instead of text for people'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'orch;metrics'= {
            cand --out 'Write the metrics to FILE (atomically: a temporary file beside it, then a rename) instead of standard output'
            cand --db 'The SQLite database [env: ORCH_DB] [default: $XDG_STATE_HOME/orch/orch.db]'
            cand --config 'The TOML configuration file [env: ORCH_CONFIG] [default: $XDG_CONFIG_HOME/orch/config.toml]'
            cand --set 'Override a setting for this invocation, e.g. `--set lease_seconds=60` (not for secrets)'
            cand --color 'When to colour human output [env: ORCH_COLOR]'
            cand --json 'Print one JSON document on stdout instead of text for people'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'orch;completions'= {
            cand --dir 'Write the scripts into this directory under their usual names (every shell, or SHELL''s)'
            cand --db 'The SQLite database [env: ORCH_DB] [default: $XDG_STATE_HOME/orch/orch.db]'
            cand --config 'The TOML configuration file [env: ORCH_CONFIG] [default: $XDG_CONFIG_HOME/orch/config.toml]'
            cand --set 'Override a setting for this invocation, e.g. `--set lease_seconds=60` (not for secrets)'
            cand --color 'When to colour human output [env: ORCH_COLOR]'
            cand --json 'Print one JSON document on stdout instead of text for people'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'orch;man'= {
            cand --dir 'Directory the pages are written into (created if missing)'
            cand --db 'The SQLite database [env: ORCH_DB] [default: $XDG_STATE_HOME/orch/orch.db]'
            cand --config 'The TOML configuration file [env: ORCH_CONFIG] [default: $XDG_CONFIG_HOME/orch/config.toml]'
            cand --set 'Override a setting for this invocation, e.g. `--set lease_seconds=60` (not for secrets)'
            cand --color 'When to colour human output [env: ORCH_COLOR]'
            cand --json 'Print one JSON document on stdout instead of text for people'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'orch;help'= {
            cand enqueue 'Create a task and queue the job for its first stage (or --stage)'
            cand claim 'Atomically take the next eligible job and lease it to a worker'
            cand status 'Counts by state and stage, running jobs and their leases, the next retries'
            cand show 'One job: its task, history and runs'
            cand run 'Launch the agent for a claimed job, capture its log and keep its lease until it ends'
            cand finalize 'Judge a job''s run and move the job on: next stage, retry, failed or gated (exit 0/20/21/22)'
            cand cancel 'Cancel a queued or running job'
            cand retry 'Put a failed or cancelled job back in the queue with its attempts reset (--stage: at that stage)'
            cand config 'Print the effective configuration and where each value came from'
            cand tick 'The whole step for cron: notify, recover, preflight, claim, run, finalize (up to --max-jobs)'
            cand demo 'Walk one task through the pipeline with a stand-in agent, in a directory of its own'
            cand validate-log 'Judge a run''s log: did the agent really succeed? (exit 0 ok, 20 retry, 21 failed, 22 auth)'
            cand preflight 'Check the agent can take a job: its binary answers --version and it is logged in'
            cand reset-cache 'Drop cached preflight verdicts and release auth gates (--breaker: close circuit breakers)'
            cand notify 'Deliver the outbox: Telegram alerts and forge usage comments that are due'
            cand logs 'Render a run''s stream-json log for a person: text, tool calls, results, verdict and usage'
            cand metrics 'Print Prometheus metrics (text exposition 0.0.4), or write them atomically with --out'
            cand completions 'Print a shell completion script, or write every shell''s into --dir'
            cand man 'Write the manual pages (orch.1 and one per subcommand) into a directory'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'orch;help;enqueue'= {
        }
        &'orch;help;claim'= {
        }
        &'orch;help;status'= {
        }
        &'orch;help;show'= {
        }
        &'orch;help;run'= {
        }
        &'orch;help;finalize'= {
        }
        &'orch;help;cancel'= {
        }
        &'orch;help;retry'= {
        }
        &'orch;help;config'= {
        }
        &'orch;help;tick'= {
        }
        &'orch;help;demo'= {
        }
        &'orch;help;validate-log'= {
        }
        &'orch;help;preflight'= {
        }
        &'orch;help;reset-cache'= {
        }
        &'orch;help;notify'= {
        }
        &'orch;help;logs'= {
        }
        &'orch;help;metrics'= {
        }
        &'orch;help;completions'= {
        }
        &'orch;help;man'= {
        }
        &'orch;help;help'= {
        }
    ]
    $completions[$command]
}
