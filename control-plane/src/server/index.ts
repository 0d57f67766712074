export {
  startControlPlane, DEFAULT_HOST, DEFAULT_PORT, DEFAULT_GRPC_PORT, type ControlPlane, type ControlPlaneOptions,
} from "./start.js";
