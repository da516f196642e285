/**
 * Prints an Ansible INI inventory for an airflow-ha inventory (same hosts, user, key and
 * known_hosts), so both tools run the same workload against the same lab hosts.
 * Usage: node dist/bench/ansible-inventory.js INVENTORY.yaml
 */
import path from 'node:path';
import { loadInventory } from '../src/inventory/load.js';

const file = process.argv[2];
if (!file) {
  process.stderr.write('usage: ansible-inventory.js INVENTORY.yaml\n');
  process.exit(2);
}
const loaded = await loadInventory(file);
const inv = loaded.inventory;
const key = inv.ssh.identityFile ? path.resolve(loaded.dir, inv.ssh.identityFile) : undefined;
const knownHosts = path.join(loaded.stateDir, 'known_hosts');
const lines = ['[lab]'];
for (const h of inv.hosts) {
  lines.push(`${h.name} ansible_host=${h.address} ansible_user=${h.ssh?.user ?? inv.ssh.user ?? 'root'}${key ? ` ansible_ssh_private_key_file=${key}` : ''}`);
}
lines.push('', '[lab:vars]', `ansible_ssh_common_args='-o UserKnownHostsFile=${knownHosts} -o StrictHostKeyChecking=yes'`, `cluster_name=${inv.cluster.name}`);
process.stdout.write(`${lines.join('\n')}\n`);
