# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_orch_global_optspecs
    string join \n db= config= set= json color= h/help V/version
end

function __fish_orch_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_orch_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_orch_using_subcommand
    set -l cmd (__fish_orch_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c orch -n "__fish_orch_needs_command" -l db -d 'The SQLite database [env: ORCH_DB] [default: $XDG_STATE_HOME/orch/orch.db]' -r -F
complete -c orch -n "__fish_orch_needs_command" -l config -d 'The TOML configuration file [env: ORCH_CONFIG] [default: $XDG_CONFIG_HOME/orch/config.toml]' -r -F
complete -c orch -n "__fish_orch_needs_command" -l set -d 'Override a setting for this invocation, e.g. `--set lease_seconds=60` (not for secrets)' -r
complete -c orch -n "__fish_orch_needs_command" -l color -d 'When to colour human output [env: ORCH_COLOR]' -r -f -a "auto\t''
always\t''
never\t''"
complete -c orch -n "__fish_orch_needs_command" -l json -d 'Print one JSON document on stdout instead of text for people'
complete -c orch -n "__fish_orch_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c orch -n "__fish_orch_needs_command" -s V -l version -d 'Print version'
complete -c orch -n "__fish_orch_needs_command" -f -a "enqueue" -d 'Create a task and queue the job for its first stage (or --stage)'
complete -c orch -n "__fish_orch_needs_command" -f -a "claim" -d 'Atomically take the next eligible job and lease it to a worker'
complete -c orch -n "__fish_orch_needs_command" -f -a "status" -d 'Counts by state and stage, running jobs and their leases, the next retries'
complete -c orch -n "__fish_orch_needs_command" -f -a "show" -d 'One job: its task, history and runs'
complete -c orch -n "__fish_orch_needs_command" -f -a "run" -d 'Launch the agent for a claimed job, capture its log and keep its lease until it ends'
complete -c orch -n "__fish_orch_needs_command" -f -a "finalize" -d 'Judge a job\'s run and move the job on: next stage, retry, failed or gated (exit 0/20/21/22)'
complete -c orch -n "__fish_orch_needs_command" -f -a "cancel" -d 'Cancel a queued or running job'
complete -c orch -n "__fish_orch_needs_command" -f -a "retry" -d 'Put a failed or cancelled job back in the queue with its attempts reset (--stage: at that stage)'
complete -c orch -n "__fish_orch_needs_command" -f -a "config" -d 'Print the effective configuration and where each value came from'
complete -c orch -n "__fish_orch_needs_command" -f -a "tick" -d 'The whole step for cron: notify, recover, preflight, claim, run, finalize (up to --max-jobs)'
complete -c orch -n "__fish_orch_needs_command" -f -a "demo" -d 'Walk one task through the pipeline with a stand-in agent, in a directory of its own'
complete -c orch -n "__fish_orch_needs_command" -f -a "validate-log" -d 'Judge a run\'s log: did the agent really succeed? (exit 0 ok, 20 retry, 21 failed, 22 auth)'
complete -c orch -n "__fish_orch_needs_command" -f -a "preflight" -d 'Check the agent can take a job: its binary answers --version and it is logged in'
complete -c orch -n "__fish_orch_needs_command" -f -a "reset-cache" -d 'Drop cached preflight verdicts and release auth gates (--breaker: close circuit breakers)'
complete -c orch -n "__fish_orch_needs_command" -f -a "notify" -d 'Deliver the outbox: Telegram alerts and forge usage comments that are due'
complete -c orch -n "__fish_orch_needs_command" -f -a "logs" -d 'Render a run\'s stream-json log for a person: text, tool calls, results, verdict and usage'
complete -c orch -n "__fish_orch_needs_command" -f -a "metrics" -d 'Print Prometheus metrics (text exposition 0.0.4), or write them atomically with --out'
complete -c orch -n "__fish_orch_needs_command" -f -a "completions" -d 'Print a shell completion script, or write every shell\'s into --dir'
complete -c orch -n "__fish_orch_needs_command" -f -a "man" -d 'Write the manual pages (orch.1 and one per subcommand) into a directory'
complete -c orch -n "__fish_orch_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c orch -n "__fish_orch_using_subcommand enqueue" -l project -d 'Project name, as in the configuration\'s [projects.NAME]' -r
complete -c orch -n "__fish_orch_using_subcommand enqueue" -l task -d 'Task key, e.g. ORCH-044' -r
complete -c orch -n "__fish_orch_using_subcommand enqueue" -l title -d 'Task title' -r
complete -c orch -n "__fish_orch_using_subcommand enqueue" -l body-file -d 'Read the task body from this file, or `-` for standard input' -r
complete -c orch -n "__fish_orch_using_subcommand enqueue" -l issue -d 'The task\'s issue number on the project\'s forge (for usage comments)' -r
complete -c orch -n "__fish_orch_using_subcommand enqueue" -l stage -d 'Start at this pipeline stage instead of the first' -r
complete -c orch -n "__fish_orch_using_subcommand enqueue" -l priority -d 'Higher runs sooner; 0 to 1000 [default: the project\'s priority]' -r
complete -c orch -n "__fish_orch_using_subcommand enqueue" -l db -d 'The SQLite database [env: ORCH_DB] [default: $XDG_STATE_HOME/orch/orch.db]' -r -F
complete -c orch -n "__fish_orch_using_subcommand enqueue" -l config -d 'The TOML configuration file [env: ORCH_CONFIG] [default: $XDG_CONFIG_HOME/orch/config.toml]' -r -F
complete -c orch -n "__fish_orch_using_subcommand enqueue" -l set -d 'Override a setting for this invocation, e.g. `--set lease_seconds=60` (not for secrets)' -r
complete -c orch -n "__fish_orch_using_subcommand enqueue" -l color -d 'When to colour human output [env: ORCH_COLOR]' -r -f -a "auto\t''
always\t''
never\t''"
complete -c orch -n "__fish_orch_using_subcommand enqueue" -l json -d 'Print one JSON document on stdout instead of text for people'
complete -c orch -n "__fish_orch_using_subcommand enqueue" -s h -l help -d 'Print help'
complete -c orch -n "__fish_orch_using_subcommand claim" -l worker -d 'Worker name that will hold the lease (e.g. the host name)' -r
complete -c orch -n "__fish_orch_using_subcommand claim" -l project -d 'Only claim jobs of this project' -r
complete -c orch -n "__fish_orch_using_subcommand claim" -l agent -d 'The agent that will run the job; its preflight must pass before anything is claimed' -r
complete -c orch -n "__fish_orch_using_subcommand claim" -l db -d 'The SQLite database [env: ORCH_DB] [default: $XDG_STATE_HOME/orch/orch.db]' -r -F
complete -c orch -n "__fish_orch_using_subcommand claim" -l config -d 'The TOML configuration file [env: ORCH_CONFIG] [default: $XDG_CONFIG_HOME/orch/config.toml]' -r -F
complete -c orch -n "__fish_orch_using_subcommand claim" -l set -d 'Override a setting for this invocation, e.g. `--set lease_seconds=60` (not for secrets)' -r
complete -c orch -n "__fish_orch_using_subcommand claim" -l color -d 'When to colour human output [env: ORCH_COLOR]' -r -f -a "auto\t''
always\t''
never\t''"
complete -c orch -n "__fish_orch_using_subcommand claim" -l json -d 'Print one JSON document on stdout instead of text for people'
complete -c orch -n "__fish_orch_using_subcommand claim" -s h -l help -d 'Print help'
complete -c orch -n "__fish_orch_using_subcommand status" -l db -d 'The SQLite database [env: ORCH_DB] [default: $XDG_STATE_HOME/orch/orch.db]' -r -F
complete -c orch -n "__fish_orch_using_subcommand status" -l config -d 'The TOML configuration file [env: ORCH_CONFIG] [default: $XDG_CONFIG_HOME/orch/config.toml]' -r -F
complete -c orch -n "__fish_orch_using_subcommand status" -l set -d 'Override a setting for this invocation, e.g. `--set lease_seconds=60` (not for secrets)' -r
complete -c orch -n "__fish_orch_using_subcommand status" -l color -d 'When to colour human output [env: ORCH_COLOR]' -r -f -a "auto\t''
always\t''
never\t''"
complete -c orch -n "__fish_orch_using_subcommand status" -l json -d 'Print one JSON document on stdout instead of text for people'
complete -c orch -n "__fish_orch_using_subcommand status" -s h -l help -d 'Print help'
complete -c orch -n "__fish_orch_using_subcommand show" -l db -d 'The SQLite database [env: ORCH_DB] [default: $XDG_STATE_HOME/orch/orch.db]' -r -F
complete -c orch -n "__fish_orch_using_subcommand show" -l config -d 'The TOML configuration file [env: ORCH_CONFIG] [default: $XDG_CONFIG_HOME/orch/config.toml]' -r -F
complete -c orch -n "__fish_orch_using_subcommand show" -l set -d 'Override a setting for this invocation, e.g. `--set lease_seconds=60` (not for secrets)' -r
complete -c orch -n "__fish_orch_using_subcommand show" -l color -d 'When to colour human output [env: ORCH_COLOR]' -r -f -a "auto\t''
always\t''
never\t''"
complete -c orch -n "__fish_orch_using_subcommand show" -l json -d 'Print one JSON document on stdout instead of text for people'
complete -c orch -n "__fish_orch_using_subcommand show" -s h -l help -d 'Print help'
complete -c orch -n "__fish_orch_using_subcommand run" -l worker -d 'The worker holding the job\'s lease' -r
complete -c orch -n "__fish_orch_using_subcommand run" -l agent -d 'Agent profile, as in the configuration\'s [agents.NAME]' -r
complete -c orch -n "__fish_orch_using_subcommand run" -l db -d 'The SQLite database [env: ORCH_DB] [default: $XDG_STATE_HOME/orch/orch.db]' -r -F
complete -c orch -n "__fish_orch_using_subcommand run" -l config -d 'The TOML configuration file [env: ORCH_CONFIG] [default: $XDG_CONFIG_HOME/orch/config.toml]' -r -F
complete -c orch -n "__fish_orch_using_subcommand run" -l set -d 'Override a setting for this invocation, e.g. `--set lease_seconds=60` (not for secrets)' -r
complete -c orch -n "__fish_orch_using_subcommand run" -l color -d 'When to colour human output [env: ORCH_COLOR]' -r -f -a "auto\t''
always\t''
never\t''"
complete -c orch -n "__fish_orch_using_subcommand run" -l json -d 'Print one JSON document on stdout instead of text for people'
complete -c orch -n "__fish_orch_using_subcommand run" -s h -l help -d 'Print help'
complete -c orch -n "__fish_orch_using_subcommand finalize" -l run -d 'This run of the job instead of its latest' -r
complete -c orch -n "__fish_orch_using_subcommand finalize" -l db -d 'The SQLite database [env: ORCH_DB] [default: $XDG_STATE_HOME/orch/orch.db]' -r -F
complete -c orch -n "__fish_orch_using_subcommand finalize" -l config -d 'The TOML configuration file [env: ORCH_CONFIG] [default: $XDG_CONFIG_HOME/orch/config.toml]' -r -F
complete -c orch -n "__fish_orch_using_subcommand finalize" -l set -d 'Override a setting for this invocation, e.g. `--set lease_seconds=60` (not for secrets)' -r
complete -c orch -n "__fish_orch_using_subcommand finalize" -l color -d 'When to colour human output [env: ORCH_COLOR]' -r -f -a "auto\t''
always\t''
never\t''"
complete -c orch -n "__fish_orch_using_subcommand finalize" -l json -d 'Print one JSON document on stdout instead of text for people'
complete -c orch -n "__fish_orch_using_subcommand finalize" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c orch -n "__fish_orch_using_subcommand cancel" -l db -d 'The SQLite database [env: ORCH_DB] [default: $XDG_STATE_HOME/orch/orch.db]' -r -F
complete -c orch -n "__fish_orch_using_subcommand cancel" -l config -d 'The TOML configuration file [env: ORCH_CONFIG] [default: $XDG_CONFIG_HOME/orch/config.toml]' -r -F
complete -c orch -n "__fish_orch_using_subcommand cancel" -l set -d 'Override a setting for this invocation, e.g. `--set lease_seconds=60` (not for secrets)' -r
complete -c orch -n "__fish_orch_using_subcommand cancel" -l color -d 'When to colour human output [env: ORCH_COLOR]' -r -f -a "auto\t''
always\t''
never\t''"
complete -c orch -n "__fish_orch_using_subcommand cancel" -l json -d 'Print one JSON document on stdout instead of text for people'
complete -c orch -n "__fish_orch_using_subcommand cancel" -s h -l help -d 'Print help'
complete -c orch -n "__fish_orch_using_subcommand retry" -l stage -d 'Queue it at this stage of the pipeline instead of its own; a queued job may be moved too (e.g. one at a stage the pipeline no longer has)' -r
complete -c orch -n "__fish_orch_using_subcommand retry" -l db -d 'The SQLite database [env: ORCH_DB] [default: $XDG_STATE_HOME/orch/orch.db]' -r -F
complete -c orch -n "__fish_orch_using_subcommand retry" -l config -d 'The TOML configuration file [env: ORCH_CONFIG] [default: $XDG_CONFIG_HOME/orch/config.toml]' -r -F
complete -c orch -n "__fish_orch_using_subcommand retry" -l set -d 'Override a setting for this invocation, e.g. `--set lease_seconds=60` (not for secrets)' -r
complete -c orch -n "__fish_orch_using_subcommand retry" -l color -d 'When to colour human output [env: ORCH_COLOR]' -r -f -a "auto\t''
always\t''
never\t''"
complete -c orch -n "__fish_orch_using_subcommand retry" -l json -d 'Print one JSON document on stdout instead of text for people'
complete -c orch -n "__fish_orch_using_subcommand retry" -s h -l help -d 'Print help'
complete -c orch -n "__fish_orch_using_subcommand config" -l db -d 'The SQLite database [env: ORCH_DB] [default: $XDG_STATE_HOME/orch/orch.db]' -r -F
complete -c orch -n "__fish_orch_using_subcommand config" -l config -d 'The TOML configuration file [env: ORCH_CONFIG] [default: $XDG_CONFIG_HOME/orch/config.toml]' -r -F
complete -c orch -n "__fish_orch_using_subcommand config" -l set -d 'Override a setting for this invocation, e.g. `--set lease_seconds=60` (not for secrets)' -r
complete -c orch -n "__fish_orch_using_subcommand config" -l color -d 'When to colour human output [env: ORCH_COLOR]' -r -f -a "auto\t''
always\t''
never\t''"
complete -c orch -n "__fish_orch_using_subcommand config" -l json -d 'Print one JSON document on stdout instead of text for people'
complete -c orch -n "__fish_orch_using_subcommand config" -s h -l help -d 'Print help'
complete -c orch -n "__fish_orch_using_subcommand tick" -l worker -d 'Worker name that holds the leases (e.g. the host name); one tick per worker at a time' -r
complete -c orch -n "__fish_orch_using_subcommand tick" -l agent -d 'Agent profile, as in the configuration\'s [agents.NAME]' -r
complete -c orch -n "__fish_orch_using_subcommand tick" -l project -d 'Only claim jobs of this project' -r
complete -c orch -n "__fish_orch_using_subcommand tick" -l max-jobs -d 'Jobs to do in this tick at most' -r
complete -c orch -n "__fish_orch_using_subcommand tick" -l db -d 'The SQLite database [env: ORCH_DB] [default: $XDG_STATE_HOME/orch/orch.db]' -r -F
complete -c orch -n "__fish_orch_using_subcommand tick" -l config -d 'The TOML configuration file [env: ORCH_CONFIG] [default: $XDG_CONFIG_HOME/orch/config.toml]' -r -F
complete -c orch -n "__fish_orch_using_subcommand tick" -l set -d 'Override a setting for this invocation, e.g. `--set lease_seconds=60` (not for secrets)' -r
complete -c orch -n "__fish_orch_using_subcommand tick" -l color -d 'When to colour human output [env: ORCH_COLOR]' -r -f -a "auto\t''
always\t''
never\t''"
complete -c orch -n "__fish_orch_using_subcommand tick" -l json -d 'Print one JSON document on stdout instead of text for people'
complete -c orch -n "__fish_orch_using_subcommand tick" -s h -l help -d 'Print help'
complete -c orch -n "__fish_orch_using_subcommand demo" -l dir -d 'Make the demo in this new or empty directory (kept) instead of a temporary one' -r -F
complete -c orch -n "__fish_orch_using_subcommand demo" -l db -d 'The SQLite database [env: ORCH_DB] [default: $XDG_STATE_HOME/orch/orch.db]' -r -F
complete -c orch -n "__fish_orch_using_subcommand demo" -l config -d 'The TOML configuration file [env: ORCH_CONFIG] [default: $XDG_CONFIG_HOME/orch/config.toml]' -r -F
complete -c orch -n "__fish_orch_using_subcommand demo" -l set -d 'Override a setting for this invocation, e.g. `--set lease_seconds=60` (not for secrets)' -r
complete -c orch -n "__fish_orch_using_subcommand demo" -l color -d 'When to colour human output [env: ORCH_COLOR]' -r -f -a "auto\t''
always\t''
never\t''"
complete -c orch -n "__fish_orch_using_subcommand demo" -l keep -d 'Leave the demo\'s directory (project, config, database, logs) to explore'
complete -c orch -n "__fish_orch_using_subcommand demo" -l json -d 'Print one JSON document on stdout instead of text for people'
complete -c orch -n "__fish_orch_using_subcommand demo" -s h -l help -d 'Print help'
complete -c orch -n "__fish_orch_using_subcommand validate-log" -l exit-code -d 'The agent\'s exit status: a success result with a non-zero status is `exit_mismatch`' -r
complete -c orch -n "__fish_orch_using_subcommand validate-log" -l db -d 'The SQLite database [env: ORCH_DB] [default: $XDG_STATE_HOME/orch/orch.db]' -r -F
complete -c orch -n "__fish_orch_using_subcommand validate-log" -l config -d 'The TOML configuration file [env: ORCH_CONFIG] [default: $XDG_CONFIG_HOME/orch/config.toml]' -r -F
complete -c orch -n "__fish_orch_using_subcommand validate-log" -l set -d 'Override a setting for this invocation, e.g. `--set lease_seconds=60` (not for secrets)' -r
complete -c orch -n "__fish_orch_using_subcommand validate-log" -l color -d 'When to colour human output [env: ORCH_COLOR]' -r -f -a "auto\t''
always\t''
never\t''"
complete -c orch -n "__fish_orch_using_subcommand validate-log" -l timed-out -d 'The run was ended by its timeout: without a success result the class is `timeout`'
complete -c orch -n "__fish_orch_using_subcommand validate-log" -l json -d 'Print one JSON document on stdout instead of text for people'
complete -c orch -n "__fish_orch_using_subcommand validate-log" -s h -l help -d 'Print help'
complete -c orch -n "__fish_orch_using_subcommand preflight" -l agent -d 'The agent to check (a [agents.NAME] profile, or claude)' -r
complete -c orch -n "__fish_orch_using_subcommand preflight" -l db -d 'The SQLite database [env: ORCH_DB] [default: $XDG_STATE_HOME/orch/orch.db]' -r -F
complete -c orch -n "__fish_orch_using_subcommand preflight" -l config -d 'The TOML configuration file [env: ORCH_CONFIG] [default: $XDG_CONFIG_HOME/orch/config.toml]' -r -F
complete -c orch -n "__fish_orch_using_subcommand preflight" -l set -d 'Override a setting for this invocation, e.g. `--set lease_seconds=60` (not for secrets)' -r
complete -c orch -n "__fish_orch_using_subcommand preflight" -l color -d 'When to colour human output [env: ORCH_COLOR]' -r -f -a "auto\t''
always\t''
never\t''"
complete -c orch -n "__fish_orch_using_subcommand preflight" -l explain -d 'Each check on its own line with its evidence and, for a failure, the fix'
complete -c orch -n "__fish_orch_using_subcommand preflight" -l no-cache -d 'Evaluate afresh instead of serving the cached verdict (the result is cached)'
complete -c orch -n "__fish_orch_using_subcommand preflight" -l json -d 'Print one JSON document on stdout instead of text for people'
complete -c orch -n "__fish_orch_using_subcommand preflight" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c orch -n "__fish_orch_using_subcommand reset-cache" -l agent -d 'Only this agent\'s verdict, gate and breaker [default: every agent\'s]' -r
complete -c orch -n "__fish_orch_using_subcommand reset-cache" -l db -d 'The SQLite database [env: ORCH_DB] [default: $XDG_STATE_HOME/orch/orch.db]' -r -F
complete -c orch -n "__fish_orch_using_subcommand reset-cache" -l config -d 'The TOML configuration file [env: ORCH_CONFIG] [default: $XDG_CONFIG_HOME/orch/config.toml]' -r -F
complete -c orch -n "__fish_orch_using_subcommand reset-cache" -l set -d 'Override a setting for this invocation, e.g. `--set lease_seconds=60` (not for secrets)' -r
complete -c orch -n "__fish_orch_using_subcommand reset-cache" -l color -d 'When to colour human output [env: ORCH_COLOR]' -r -f -a "auto\t''
always\t''
never\t''"
complete -c orch -n "__fish_orch_using_subcommand reset-cache" -l breaker -d 'Also close the circuit breaker and forget its count of failures'
complete -c orch -n "__fish_orch_using_subcommand reset-cache" -l json -d 'Print one JSON document on stdout instead of text for people'
complete -c orch -n "__fish_orch_using_subcommand reset-cache" -s h -l help -d 'Print help'
complete -c orch -n "__fish_orch_using_subcommand notify" -l db -d 'The SQLite database [env: ORCH_DB] [default: $XDG_STATE_HOME/orch/orch.db]' -r -F
complete -c orch -n "__fish_orch_using_subcommand notify" -l config -d 'The TOML configuration file [env: ORCH_CONFIG] [default: $XDG_CONFIG_HOME/orch/config.toml]' -r -F
complete -c orch -n "__fish_orch_using_subcommand notify" -l set -d 'Override a setting for this invocation, e.g. `--set lease_seconds=60` (not for secrets)' -r
complete -c orch -n "__fish_orch_using_subcommand notify" -l color -d 'When to colour human output [env: ORCH_COLOR]' -r -f -a "auto\t''
always\t''
never\t''"
complete -c orch -n "__fish_orch_using_subcommand notify" -l retry-dead -d 'Give dead messages (out of attempts) another round first'
complete -c orch -n "__fish_orch_using_subcommand notify" -l json -d 'Print one JSON document on stdout instead of text for people'
complete -c orch -n "__fish_orch_using_subcommand notify" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c orch -n "__fish_orch_using_subcommand logs" -l run -d 'The run to show (the RUN column of `orch show JOB`) [default: the job\'s latest run]' -r
complete -c orch -n "__fish_orch_using_subcommand logs" -l db -d 'The SQLite database [env: ORCH_DB] [default: $XDG_STATE_HOME/orch/orch.db]' -r -F
complete -c orch -n "__fish_orch_using_subcommand logs" -l config -d 'The TOML configuration file [env: ORCH_CONFIG] [default: $XDG_CONFIG_HOME/orch/config.toml]' -r -F
complete -c orch -n "__fish_orch_using_subcommand logs" -l set -d 'Override a setting for this invocation, e.g. `--set lease_seconds=60` (not for secrets)' -r
complete -c orch -n "__fish_orch_using_subcommand logs" -l color -d 'When to colour human output [env: ORCH_COLOR]' -r -f -a "auto\t''
always\t''
never\t''"
complete -c orch -n "__fish_orch_using_subcommand logs" -l raw -d 'Print the log exactly as stored'
complete -c orch -n "__fish_orch_using_subcommand logs" -l json -d 'Print one JSON document on stdout instead of text for people'
complete -c orch -n "__fish_orch_using_subcommand logs" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c orch -n "__fish_orch_using_subcommand metrics" -l out -d 'Write the metrics to FILE (atomically: a temporary file beside it, then a rename) instead of standard output' -r -F
complete -c orch -n "__fish_orch_using_subcommand metrics" -l db -d 'The SQLite database [env: ORCH_DB] [default: $XDG_STATE_HOME/orch/orch.db]' -r -F
complete -c orch -n "__fish_orch_using_subcommand metrics" -l config -d 'The TOML configuration file [env: ORCH_CONFIG] [default: $XDG_CONFIG_HOME/orch/config.toml]' -r -F
complete -c orch -n "__fish_orch_using_subcommand metrics" -l set -d 'Override a setting for this invocation, e.g. `--set lease_seconds=60` (not for secrets)' -r
complete -c orch -n "__fish_orch_using_subcommand metrics" -l color -d 'When to colour human output [env: ORCH_COLOR]' -r -f -a "auto\t''
always\t''
never\t''"
complete -c orch -n "__fish_orch_using_subcommand metrics" -l json -d 'Print one JSON document on stdout instead of text for people'
complete -c orch -n "__fish_orch_using_subcommand metrics" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c orch -n "__fish_orch_using_subcommand completions" -l dir -d 'Write the scripts into this directory under their usual names (every shell, or SHELL\'s)' -r -F
complete -c orch -n "__fish_orch_using_subcommand completions" -l db -d 'The SQLite database [env: ORCH_DB] [default: $XDG_STATE_HOME/orch/orch.db]' -r -F
complete -c orch -n "__fish_orch_using_subcommand completions" -l config -d 'The TOML configuration file [env: ORCH_CONFIG] [default: $XDG_CONFIG_HOME/orch/config.toml]' -r -F
complete -c orch -n "__fish_orch_using_subcommand completions" -l set -d 'Override a setting for this invocation, e.g. `--set lease_seconds=60` (not for secrets)' -r
complete -c orch -n "__fish_orch_using_subcommand completions" -l color -d 'When to colour human output [env: ORCH_COLOR]' -r -f -a "auto\t''
always\t''
never\t''"
complete -c orch -n "__fish_orch_using_subcommand completions" -l json -d 'Print one JSON document on stdout instead of text for people'
complete -c orch -n "__fish_orch_using_subcommand completions" -s h -l help -d 'Print help'
complete -c orch -n "__fish_orch_using_subcommand man" -l dir -d 'Directory the pages are written into (created if missing)' -r -F
complete -c orch -n "__fish_orch_using_subcommand man" -l db -d 'The SQLite database [env: ORCH_DB] [default: $XDG_STATE_HOME/orch/orch.db]' -r -F
complete -c orch -n "__fish_orch_using_subcommand man" -l config -d 'The TOML configuration file [env: ORCH_CONFIG] [default: $XDG_CONFIG_HOME/orch/config.toml]' -r -F
complete -c orch -n "__fish_orch_using_subcommand man" -l set -d 'Override a setting for this invocation, e.g. `--set lease_seconds=60` (not for secrets)' -r
complete -c orch -n "__fish_orch_using_subcommand man" -l color -d 'When to colour human output [env: ORCH_COLOR]' -r -f -a "auto\t''
always\t''
never\t''"
complete -c orch -n "__fish_orch_using_subcommand man" -l json -d 'Print one JSON document on stdout instead of text for people'
complete -c orch -n "__fish_orch_using_subcommand man" -s h -l help -d 'Print help'
complete -c orch -n "__fish_orch_using_subcommand help; and not __fish_seen_subcommand_from enqueue claim status show run finalize cancel retry config tick demo validate-log preflight reset-cache notify logs metrics completions man help" -f -a "enqueue" -d 'Create a task and queue the job for its first stage (or --stage)'
complete -c orch -n "__fish_orch_using_subcommand help; and not __fish_seen_subcommand_from enqueue claim status show run finalize cancel retry config tick demo validate-log preflight reset-cache notify logs metrics completions man help" -f -a "claim" -d 'Atomically take the next eligible job and lease it to a worker'
complete -c orch -n "__fish_orch_using_subcommand help; and not __fish_seen_subcommand_from enqueue claim status show run finalize cancel retry config tick demo validate-log preflight reset-cache notify logs metrics completions man help" -f -a "status" -d 'Counts by state and stage, running jobs and their leases, the next retries'
complete -c orch -n "__fish_orch_using_subcommand help; and not __fish_seen_subcommand_from enqueue claim status show run finalize cancel retry config tick demo validate-log preflight reset-cache notify logs metrics completions man help" -f -a "show" -d 'One job: its task, history and runs'
complete -c orch -n "__fish_orch_using_subcommand help; and not __fish_seen_subcommand_from enqueue claim status show run finalize cancel retry config tick demo validate-log preflight reset-cache notify logs metrics completions man help" -f -a "run" -d 'Launch the agent for a claimed job, capture its log and keep its lease until it ends'
complete -c orch -n "__fish_orch_using_subcommand help; and not __fish_seen_subcommand_from enqueue claim status show run finalize cancel retry config tick demo validate-log preflight reset-cache notify logs metrics completions man help" -f -a "finalize" -d 'Judge a job\'s run and move the job on: next stage, retry, failed or gated (exit 0/20/21/22)'
complete -c orch -n "__fish_orch_using_subcommand help; and not __fish_seen_subcommand_from enqueue claim status show run finalize cancel retry config tick demo validate-log preflight reset-cache notify logs metrics completions man help" -f -a "cancel" -d 'Cancel a queued or running job'
complete -c orch -n "__fish_orch_using_subcommand help; and not __fish_seen_subcommand_from enqueue claim status show run finalize cancel retry config tick demo validate-log preflight reset-cache notify logs metrics completions man help" -f -a "retry" -d 'Put a failed or cancelled job back in the queue with its attempts reset (--stage: at that stage)'
complete -c orch -n "__fish_orch_using_subcommand help; and not __fish_seen_subcommand_from enqueue claim status show run finalize cancel retry config tick demo validate-log preflight reset-cache notify logs metrics completions man help" -f -a "config" -d 'Print the effective configuration and where each value came from'
complete -c orch -n "__fish_orch_using_subcommand help; and not __fish_seen_subcommand_from enqueue claim status show run finalize cancel retry config tick demo validate-log preflight reset-cache notify logs metrics completions man help" -f -a "tick" -d 'The whole step for cron: notify, recover, preflight, claim, run, finalize (up to --max-jobs)'
complete -c orch -n "__fish_orch_using_subcommand help; and not __fish_seen_subcommand_from enqueue claim status show run finalize cancel retry config tick demo validate-log preflight reset-cache notify logs metrics completions man help" -f -a "demo" -d 'Walk one task through the pipeline with a stand-in agent, in a directory of its own'
complete -c orch -n "__fish_orch_using_subcommand help; and not __fish_seen_subcommand_from enqueue claim status show run finalize cancel retry config tick demo validate-log preflight reset-cache notify logs metrics completions man help" -f -a "validate-log" -d 'Judge a run\'s log: did the agent really succeed? (exit 0 ok, 20 retry, 21 failed, 22 auth)'
complete -c orch -n "__fish_orch_using_subcommand help; and not __fish_seen_subcommand_from enqueue claim status show run finalize cancel retry config tick demo validate-log preflight reset-cache notify logs metrics completions man help" -f -a "preflight" -d 'Check the agent can take a job: its binary answers --version and it is logged in'
complete -c orch -n "__fish_orch_using_subcommand help; and not __fish_seen_subcommand_from enqueue claim status show run finalize cancel retry config tick demo validate-log preflight reset-cache notify logs metrics completions man help" -f -a "reset-cache" -d 'Drop cached preflight verdicts and release auth gates (--breaker: close circuit breakers)'
complete -c orch -n "__fish_orch_using_subcommand help; and not __fish_seen_subcommand_from enqueue claim status show run finalize cancel retry config tick demo validate-log preflight reset-cache notify logs metrics completions man help" -f -a "notify" -d 'Deliver the outbox: Telegram alerts and forge usage comments that are due'
complete -c orch -n "__fish_orch_using_subcommand help; and not __fish_seen_subcommand_from enqueue claim status show run finalize cancel retry config tick demo validate-log preflight reset-cache notify logs metrics completions man help" -f -a "logs" -d 'Render a run\'s stream-json log for a person: text, tool calls, results, verdict and usage'
complete -c orch -n "__fish_orch_using_subcommand help; and not __fish_seen_subcommand_from enqueue claim status show run finalize cancel retry config tick demo validate-log preflight reset-cache notify logs metrics completions man help" -f -a "metrics" -d 'Print Prometheus metrics (text exposition 0.0.4), or write them atomically with --out'
complete -c orch -n "__fish_orch_using_subcommand help; and not __fish_seen_subcommand_from enqueue claim status show run finalize cancel retry config tick demo validate-log preflight reset-cache notify logs metrics completions man help" -f -a "completions" -d 'Print a shell completion script, or write every shell\'s into --dir'
complete -c orch -n "__fish_orch_using_subcommand help; and not __fish_seen_subcommand_from enqueue claim status show run finalize cancel retry config tick demo validate-log preflight reset-cache notify logs metrics completions man help" -f -a "man" -d 'Write the manual pages (orch.1 and one per subcommand) into a directory'
complete -c orch -n "__fish_orch_using_subcommand help; and not __fish_seen_subcommand_from enqueue claim status show run finalize cancel retry config tick demo validate-log preflight reset-cache notify logs metrics completions man help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
