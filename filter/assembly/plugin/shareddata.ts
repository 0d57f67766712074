// Envoy shared data (process-wide per vm_id, seen by every worker's VM): the trace memory's store
// and the proxy-wide instance sequence.
import * as host from "../abi/host";
import { WasmResult } from "../abi/types";
import { Scratch, utf8 } from "../lane/bytes";
import { Entropy } from "../lane/entropy";
import { SharedStore } from "../lane/tracememory";

export class HostSharedStore extends SharedStore {
  get(keyPtr: usize, keyLen: usize): bool {
    if (host.getSharedData(keyPtr, keyLen) != WasmResult.Ok) return false;
    this.valPtr = host.retPtr;
    this.valLen = host.retLen;
    return true;
  }
  release(): void { host.freeRet(); }
  set(keyPtr: usize, keyLen: usize, valPtr: usize, valLen: usize): void {
    host.setSharedData(keyPtr, keyLen, valPtr, valLen, 0);
  }
}

const INSTANCE_SEQ = utf8("graylane/instance-seq");

/**
 * The next number of a proxy-wide sequence (1, 2, …), by compare-and-swap; 0 if the host refuses.
 * Claimed once per root context (LaneRoot.vmNumber): it seeds the VM's Entropy and names the instance.
 */
export function claimInstanceNumber(): u32 {
  const buf = heap.alloc(4);
  let claimed: u32 = 0;
  for (let attempt = 0; attempt < 64 && claimed == 0; attempt++) {
    let next: u32 = 1;
    let cas: u32 = 0; // key not there yet: create it
    if (host.getSharedData(INSTANCE_SEQ.dataStart, <usize>INSTANCE_SEQ.byteLength) == WasmResult.Ok) {
      if (host.retLen == 4) next = load<u32>(host.retPtr) + 1;
      cas = host.retCas;
      host.freeRet();
    }
    store<u32>(buf, next);
    if (host.setSharedData(INSTANCE_SEQ.dataStart, <usize>INSTANCE_SEQ.byteLength, buf, 4, cas) == WasmResult.Ok) claimed = next;
  }
  heap.free(buf);
  return claimed;
}

function hex64(n: u64): string {
  const s = new Scratch();
  s.pushHex(n, 16);
  const out = String.UTF8.decodeUnsafe(s.ptr, s.len);
  heap.free(s.ptr);
  return out;
}

/**
 * A root context's instance id for its whole life (a restart is a new instance): `node/N/random`.
 * The worker VMs of one Envoy are identical and Envoy configures them within the same clock reading,
 * so the clock alone gave two VMs the same id (their cumulative reports then overwrote each other's:
 * counts lost or multiplied). A number claimed by compare-and-swap in the proxy-wide shared data
 * tells them apart; the time, read on the VM's own worker thread, tells restarts apart.
 */
export function newInstanceId(nodeId: string, number: u32, entropy: Entropy): string {
  const r = entropy.mix(host.nowNanos());
  return (nodeId.length > 0 ? nodeId : "node") + "/" + number.toString() + "/" + hex64(r);
}
