"""Stage 5, release orchestration: gate, deploy, the switch state machine, rollback, retire, locks, history."""
