// Real servers and network faults for integration and end-to-end tests. The process starters
// live in src/localCluster (the demo uses them too); the TCP proxy is for tests only.
export { freePort, freePorts } from '../../src/tools/localCluster/freePort.ts';
export {
  ChildExitedError,
  ChildNotReadyError,
  ChildServer,
} from '../../src/tools/localCluster/childServer.ts';
export type { ChildServerOptions } from '../../src/tools/localCluster/childServer.ts';
export { startNats, startNatsCluster } from '../../src/tools/localCluster/nats.ts';
export type { NatsClusterHandle, NatsServerHandle } from '../../src/tools/localCluster/nats.ts';
export { startEtcd } from '../../src/tools/localCluster/etcd.ts';
export type { EtcdHandle } from '../../src/tools/localCluster/etcd.ts';
export { startTcpProxy } from './tcpProxy.ts';
export type { TcpProxyHandle } from './tcpProxy.ts';
