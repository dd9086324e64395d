/**
 * `understudy/node`: a master node embedded in another process. {@link loadNodeConfig} reads
 * the settings as `understudy node` does (flags object, environment, config file);
 * {@link startNode} connects to NATS and etcd, serves HTTP and runs the node until `stop()`.
 */
export { loadNodeConfig, type NodeConfig } from '../config/config.ts';
export { startNode, type RunningNode } from './nodeProcess.ts';
