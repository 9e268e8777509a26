// Output of `strata compare`: a table for a terminal, JSON lines for tools, the fidelity summary
// and the node-capacity view. Field names of the JSON lines are what tools/plot_compare.py reads.
// Thread safety: pure functions.
#pragma once

#include <string>
#include <vector>

#include "tools/compare.h"

namespace strata::tools {

std::string SummaryJson(const Trace& trace, const TraceSummary& s, const std::string& model);
std::string ResultJson(const CompareResult& r);
// The table's columns: one node's tiers, or (a sweep with several nodes or a cluster tier) the
// node count, the assignment and the cluster tier's hits and traffic instead of resident tokens.
enum class TableColumns : uint8_t { kNode, kCluster };
std::string TableHeader(TableColumns columns = TableColumns::kNode);
std::string TableRow(const CompareResult& r, TableColumns columns = TableColumns::kNode);
// A codec's estimate (tools/codec_estimate.h) for the setup's layout and hardware.
std::string CodecJson(const CompareSetup& setup, const CodecEstimate& e);
std::string CodecTable(const CompareSetup& setup, const CodecEstimate& e);
// The NVMe tier at the end of each run: tokens per TB, raw and stored bytes, restore rate.
std::string NvmeTableHeader();
std::string NvmeTableRow(const CompareResult& r);
std::string NodeCapacityJson(const CompareSetup& setup, const std::vector<NodeCapacity>& caps);
std::string NodeCapacityTable(const CompareSetup& setup, const std::vector<NodeCapacity>& caps);

}  // namespace strata::tools
