/** The `warden` command line: one file per command, wired here. */
import { Command } from 'commander';
import { VERSION } from '../version.js';
import { registerAgents } from './agents.js';
import { registerApprovals } from './approvals.js';
import { registerAudit } from './audit.js';
import { registerDemo } from './demo.js';
import { registerGrants } from './grants.js';
import { registerInspect } from './inspect.js';
import { registerKill } from './kill.js';
import { registerPolicy } from './policy.js';
import { registerStart } from './start.js';
import { registerToken } from './token.js';
import { registerTools } from './tools.js';
import { registerUsers } from './users.js';

const program = new Command();
program
  .name('warden')
  .description('Warden: a security gateway for AI agents’ tool calls')
  .version(VERSION, '-V, --version')
  .showHelpAfterError('(run with --help for usage)')
  .configureHelp({ sortSubcommands: true });

registerStart(program);
registerDemo(program);
registerToken(program);
registerAgents(program);
registerAudit(program);
registerPolicy(program);
registerApprovals(program);
registerKill(program);
registerUsers(program);
registerGrants(program);
registerInspect(program);
registerTools(program);

await program.parseAsync(process.argv);
