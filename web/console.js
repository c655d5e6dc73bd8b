// The console: placeholder until the console lands (see README).
