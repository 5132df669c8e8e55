export { build, type App, type Dependencies } from './app.ts';
export { defaultConfig, type ExecutorConfig } from './config.ts';
export { createExecutor, serve, type Executor, type ServeOptions, type RunningServer } from './serve.ts';
export { VERSION } from './version.ts';
