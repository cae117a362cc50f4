// Command otelcol-newstyle is a minimal OpenTelemetry Collector, with what
// reading newstyle's journal entries takes: the journald receiver, the
// transform processor, the batch processor, and the file and debug
// exporters. It is built as the Collector Builder (ocb) would build it,
// from the collector's Go modules, all at one release (v0.160.0, core
// modules v1.66.0).
//
//	otelcol-newstyle --config=newstyle.yaml
//
// The configuration newstyle documents is newstyle.yaml, beside this
// module's go.mod.
package main

import (
	"log"

	"github.com/open-telemetry/opentelemetry-collector-contrib/exporter/fileexporter"
	"github.com/open-telemetry/opentelemetry-collector-contrib/processor/transformprocessor"
	"github.com/open-telemetry/opentelemetry-collector-contrib/receiver/journaldreceiver"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/provider/envprovider"
	"go.opentelemetry.io/collector/confmap/provider/fileprovider"
	"go.opentelemetry.io/collector/confmap/provider/yamlprovider"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/debugexporter"
	"go.opentelemetry.io/collector/otelcol"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/batchprocessor"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/service/telemetry/otelconftelemetry"
)

// version is this build's; the collector modules are at v0.160.0.
const version = "0.160.0-newstyle"

func main() {
	info := component.BuildInfo{
		Command:     "otelcol-newstyle",
		Description: "A minimal OpenTelemetry Collector for newstyle's journal entries",
		Version:     version,
	}
	set := otelcol.CollectorSettings{
		BuildInfo: info,
		Factories: components,
		ConfigProviderSettings: otelcol.ConfigProviderSettings{
			ResolverSettings: confmap.ResolverSettings{
				ProviderFactories: []confmap.ProviderFactory{
					envprovider.NewFactory(),
					fileprovider.NewFactory(),
					yamlprovider.NewFactory(),
				},
			},
		},
	}
	if err := otelcol.NewCommand(set).Execute(); err != nil {
		log.Fatal(err)
	}
}

// components returns the factories of the collector's components, as the
// Collector Builder's generated components.go does.
func components() (otelcol.Factories, error) {
	var err error
	factories := otelcol.Factories{
		// Without it, this release exits "Telemetry must not be nil".
		Telemetry: otelconftelemetry.NewFactory(),
	}
	if factories.Receivers, err = otelcol.MakeFactoryMap[receiver.Factory](
		journaldreceiver.NewFactory(),
	); err != nil {
		return otelcol.Factories{}, err
	}
	if factories.Processors, err = otelcol.MakeFactoryMap[processor.Factory](
		transformprocessor.NewFactory(),
		batchprocessor.NewFactory(),
	); err != nil {
		return otelcol.Factories{}, err
	}
	if factories.Exporters, err = otelcol.MakeFactoryMap[exporter.Factory](
		fileexporter.NewFactory(),
		debugexporter.NewFactory(),
	); err != nil {
		return otelcol.Factories{}, err
	}
	return factories, nil
}
