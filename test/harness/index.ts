// Real servers and network faults for integration and end-to-end tests.
export { freePort, freePorts } from './freePort.ts';
export { ChildExitedError, ChildNotReadyError, ChildServer } from './childServer.ts';
export type { ChildServerOptions } from './childServer.ts';
export { startNats, startNatsCluster } from './nats.ts';
export type { NatsClusterHandle, NatsServerHandle } from './nats.ts';
export { startEtcd } from './etcd.ts';
export type { EtcdHandle } from './etcd.ts';
export { startTcpProxy } from './tcpProxy.ts';
export type { TcpProxyHandle } from './tcpProxy.ts';
