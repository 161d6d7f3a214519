// TODO(agent): implement
