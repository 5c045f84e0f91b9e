complete --keep-order --exclusive --command orch --arguments "(COMPLETE=fish orch -- (commandline --current-process --tokenize --cut-at-cursor) (commandline --current-token))"
